"""A DRfC setup on two real SeaweedFS servers: three seeded runs and their configuration files."""

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

SCALE = 0.02
RUNS = (("0", "alpha"), ("1", "beta"), ("2", "gamma"))


@dataclass
class Drfc:
    local: SeaweedServer
    upload: SeaweedServer
    local_bucket: str
    upload_bucket: str
    files: DrfcFiles
    models: dict[str, SeededModel]  # run id -> seeded model

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DR_", "AWS_", "DRTRANSFER_"))}
        env.update(self.files.environ)
        env.update(extra)
        return env

    def run(
        self, *args: str, command: str = "drtransfer", env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        exe = str(Path(sys.executable).parent / command)
        return subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            env=env or self.env(),
            timeout=240,
            input=stdin if stdin is not None else "",
        )

    def upload_args(self, *run_ids: str) -> list[str]:
        ids = run_ids or tuple(r for r, _ in RUNS)
        return [*(str(self.files.run_files[int(r)]) for r in ids), "--system-env", str(self.files.system_env)]


@pytest.fixture
def drfc(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> Drfc:
    return make_drfc(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket)


def make_drfc(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> Drfc:
    """The ``drfc`` fixture's setup, for fixtures elsewhere that build on it (tests/importers)."""
    client = local_s3.client()
    models = {
        run_id: seed_model(client, local_bucket, prefix, checkpoints=(1, 2, 10, 11), best=2, scale=SCALE)
        for run_id, prefix in RUNS
    }
    files = drfc_config_for(
        tmp_path / "drfc",
        local_s3,
        local_bucket,
        upload_s3,
        upload_bucket,
        [(run_id, prefix, f"{prefix}-up") for run_id, prefix in RUNS],
    )
    return Drfc(local_s3, upload_s3, local_bucket, upload_bucket, files, models)
