"""``drtransfer car-zip`` and ``dr-upload-car-zip`` run as a user runs them: real DRfC configuration files,
two SeaweedFS servers, the installed console scripts; archives are written to ``--output`` or uploaded after
DRfC's confirmation, from S3 or from the run's training container."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.carzip.conftest import SageMakerContainers, read_archive
from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup, seed_drfc
from tests.infra.json_docs import assert_documented

SCALE = 0.01
RUNS = (("0", "alpha", "alpha.v1"), ("1", "beta", "beta-car"))  # run id, model prefix, upload prefix


@dataclass
class Setup(DrfcSetup):
    """Two seeded runs (``RUNS``); the commands keep their state next to the DRfC files."""

    def graph(self, run_id: str, number: int) -> bytes:
        key = f"{self.models[run_id].prefix}/model/model_{number}.pb"
        body: bytes = self.local.client().get_object(Bucket=self.local_bucket, Key=key)["Body"].read()
        return body


@pytest.fixture
def setup(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> Setup:
    return seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, RUNS, checkpoints=(1, 2, 3), best=2,
        scale=SCALE, environ={"DRTRANSFER_STATE_DIR": str(tmp_path / "drfc" / "state")}, kind=Setup,
    )  # fmt: skip


def test_car_zip_writes_every_runs_archive_to_output_without_uploading(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "cars"
    result = setup.run("car-zip", *setup.upload_args("0", "1"), "-b", "--output", str(out), "--no-upload", "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alpha-v1.tar.gz", "beta-car.tar.gz"]
    for run_id, name in (("0", "alpha-v1"), ("1", "beta-car")):
        members = read_archive((out / f"{name}.tar.gz").read_bytes())
        assert members["agent/model.pb"] == setup.graph(run_id, 2)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        assert_documented("car-zip", line)
    assert [(d["run_id"], d["status"], d["archive"]) for d in lines] == [
        ("0", "ok", "alpha-v1.tar.gz"),
        ("1", "ok", "beta-car.tar.gz"),
    ]
    assert "archive named 'alpha-v1' instead of 'alpha.v1'" in result.stderr
    assert list_tree(setup.upload, setup.upload_bucket) == {}


def test_car_zip_uploads_after_the_drfc_confirmation(setup: Setup) -> None:
    refused = setup.run("car-zip", *setup.upload_args("0", "1"), stdin="n\n")
    assert refused.returncode == 2
    assert "Ready to upload alpha-v1.tar.gz to s3://" in refused.stderr
    assert "pass -f" in refused.stderr
    assert list_tree(setup.upload, setup.upload_bucket) == {}

    result = setup.run("car-zip", *setup.upload_args("0", "1"), "-c", "1", "-f")
    assert result.returncode == 0, result.stderr
    uploaded = list_tree(setup.upload, setup.upload_bucket)
    assert sorted(uploaded) == ["alpha.v1/alpha-v1.tar.gz", "beta-car/beta-car.tar.gz"]
    assert read_archive(uploaded["beta-car/beta-car.tar.gz"])["agent/model.pb"] == setup.graph("1", 1)


def test_dr_upload_car_zip_speaks_drfc(setup: Setup) -> None:
    result = setup.run(*setup.upload_args("1"), "-b", "-L", "-f", command="dr-upload-car-zip")
    assert result.returncode == 0, result.stderr
    assert f"Ready to upload beta-car.tar.gz to s3://{setup.local_bucket}/beta/beta-car.tar.gz" in result.stderr
    archive = list_tree(setup.local, setup.local_bucket, "beta/beta-car.tar.gz")["beta/beta-car.tar.gz"]
    assert read_archive(archive)["agent/model.pb"] == setup.graph("1", 2)

    # -p PREFIX: that model, named and uploaded under PREFIX (as dr-upload-model -p).
    result = setup.run(*setup.upload_args("0"), "-p", "beta", "-f", command="dr-upload-car-zip")
    assert result.returncode == 0, result.stderr
    archive = list_tree(setup.upload, setup.upload_bucket, "beta/")["beta/beta.tar.gz"]
    assert read_archive(archive)["agent/model.pb"] == setup.graph("1", 3)


@pytest.mark.docker
def test_car_zip_from_the_training_container(setup: Setup, sagemaker: SageMakerContainers, tmp_path: Path) -> None:
    # The run's model prefix must be unique on this Docker Engine: rewrite run 1's file.
    prefix = f"beta-{os.getpid()}-{tmp_path.name[-6:]}"
    run_file = setup.files.run_files[1]
    run_file.write_text(
        run_file.read_text().replace("DR_LOCAL_S3_MODEL_PREFIX=beta", f"DR_LOCAL_S3_MODEL_PREFIX={prefix}")
    )
    container = sagemaker.start(run_id="1", job_name=prefix)
    out = tmp_path / "cars"
    result = setup.run("car-zip", *setup.upload_args("1"), "--from", "container", "--output", str(out), "--no-upload")
    assert result.returncode == 0, result.stderr
    assert f"container {container.name}" in result.stdout
    assert read_archive((out / "beta-car.tar.gz").read_bytes())["agent/model.pb"] == container.pb

    result = setup.run("car-zip", *setup.upload_args("0"), "--from", "container", "--output", str(out), "--no-upload")
    assert result.returncode == 1
    assert "No running SageMaker container belongs to run 0 (alpha)" in result.stderr


def test_dr_upload_car_zip_p_needs_no_reward_function(setup: Setup) -> None:
    """Car packages hold no reward function: a -p prefix without one (and no custom_files fallback) builds."""
    setup.local.client().delete_object(Bucket=setup.local_bucket, Key="beta/reward_function.py")
    result = setup.run(*setup.upload_args("0"), "-p", "beta", "-f", command="dr-upload-car-zip")
    assert result.returncode == 0, result.stderr
    archive = list_tree(setup.upload, setup.upload_bucket, "beta/")["beta/beta.tar.gz"]
    assert read_archive(archive)["agent/model.pb"] == setup.graph("1", 3)
