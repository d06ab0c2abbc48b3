"""One seeded DRfC run on the session's SeaweedFS servers, for the end-to-end plugin tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import SeededModel
from tests.infra.drfc import DrfcSetup, seed_drfc

PREFIX = "alpha"
TARGET = "alpha-up"
CHECKPOINTS = (1, 2, 9, 10)  # real metrics: progress 5.75, 9.5, 44.5, 42.0 -> metric:progress is 9


@dataclass
class DrfcRun(DrfcSetup):
    """The setup of one run (run id 0, ``PREFIX`` uploaded to ``TARGET``)."""

    @property
    def model(self) -> SeededModel:
        return self.models["0"]

    def upload_cmd(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``drtransfer upload`` of the run in-process (``--processes 0``), ``env`` added to its environment."""
        return self.run("upload", *self.upload_args(), "--processes", "0", *args, env=self.env(**env), timeout=120)


@pytest.fixture
def drfc_run(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> DrfcRun:
    return seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, [("0", PREFIX, TARGET)],
        checkpoints=CHECKPOINTS, best=2, scale=0.005, kind=DrfcRun,
    )  # fmt: skip
