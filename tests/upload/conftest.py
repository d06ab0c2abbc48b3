"""A DRfC setup on two real SeaweedFS servers: three seeded runs and their configuration files.

``Drfc`` is :class:`tests.infra.drfc.DrfcSetup` under the name it had here (code that imports it from here
keeps working); new code imports ``DrfcSetup`` from tests.infra.drfc.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.infra.drfc import DrfcSetup, seed_drfc

SCALE = 0.02
RUNS = (("0", "alpha"), ("1", "beta"), ("2", "gamma"))  # run id, model prefix; each uploads to "<prefix>-up"
CHECKPOINTS = (1, 2, 10, 11)  # best is 2, last is 11

Drfc = DrfcSetup


@pytest.fixture
def drfc(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> DrfcSetup:
    return make_drfc(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket)


def make_drfc(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> DrfcSetup:
    """The ``drfc`` fixture's setup, for fixtures elsewhere that build on it (tests/importers)."""
    return seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, RUNS,
        checkpoints=CHECKPOINTS, best=2, scale=SCALE,
    )  # fmt: skip
