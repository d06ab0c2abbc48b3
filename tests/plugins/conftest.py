"""One seeded DRfC run on the session's SeaweedFS servers, for the end-to-end plugin tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import DrfcFiles, SeededModel, seed_model
from tests.conftest import drfc_config_for

PREFIX = "alpha"
TARGET = "alpha-up"
CHECKPOINTS = (1, 2, 9, 10)  # real metrics: progress 5.75, 9.5, 44.5, 42.0 -> metric:progress is 9


@dataclass
class DrfcRun:
    local: SeaweedServer
    upload: SeaweedServer
    local_bucket: str
    upload_bucket: str
    files: DrfcFiles
    model: SeededModel

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DR_", "AWS_", "DRTRANSFER_"))}
        env.update(self.files.environ)
        env.update(extra)
        return env

    def upload_cmd(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        exe = str(Path(sys.executable).parent / "drtransfer")
        command = [exe, "upload", str(self.files.run_files[0]), "--system-env", str(self.files.system_env)]
        return subprocess.run(
            [*command, "--processes", "0", *args],
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=120,
            input="",
        )


@pytest.fixture
def drfc_run(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> DrfcRun:
    model = seed_model(local_s3.client(), local_bucket, PREFIX, checkpoints=CHECKPOINTS, best=2, scale=0.005)
    files = drfc_config_for(
        tmp_path / "drfc", local_s3, local_bucket, upload_s3, upload_bucket, [("0", PREFIX, TARGET)]
    )
    return DrfcRun(local_s3, upload_s3, local_bucket, upload_bucket, files, model)
