"""Fixtures of the job API tests: two seeded DRfC runs (alpha, beta) on the test servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtransfer.config import load_runs
from drtransfer.locals3 import SeaweedServer
from drtransfer.runconfig import RunConfig
from drtransfer.samples import seed_model
from tests.infra.drfc import drfc_config_for


@pytest.fixture
def runs(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> list[RunConfig]:  # fmt: skip
    for prefix in ("alpha", "beta"):
        seed_model(local_s3.client(), local_bucket, prefix, checkpoints=(1, 2), best=1, scale=0.02)
    pairs = [("0", "alpha", "alpha-up"), ("1", "beta", "beta-up")]
    files = drfc_config_for(tmp_path, local_s3, local_bucket, upload_s3, upload_bucket, pairs)
    monkeypatch.setenv("DRTRANSFER_STATE_DIR", str(tmp_path / "state"))
    return load_runs(files.run_files, environ=dict(files.environ))
