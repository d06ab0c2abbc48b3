"""Control-plane requests per model (issue 17): the target listing the checks read is the one the engine
uses, unfinished uploads are swept once per target bucket, a small source file is read once; counted by
SeaweedFS itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine import EngineSettings, run_transfer
from drtransfer.inventory import inspect_model
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelPlan, ObjectLocation
from drtransfer.samples import seed_model
from tests.conftest import list_multipart_uploads, start_seaweed, unique_bucket
from tests.engine.engine_helpers import target_bytes
from tests.engine.test_faults import rclone_s3  # noqa: F401 (the fixture: `rclone serve s3`)
from tests.infra.drfc import seed_drfc
from tests.upload.test_inventory_and_plan import make_run


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("weed-counted"), count_requests=True)
    yield server
    server.stop(graceful=False)


def requests_to(server: SeaweedServer, bucket: str, before: dict[tuple[str, str], int]) -> dict[str, int]:
    """The requests ``bucket`` served since ``before`` (request_counts()), by type."""
    delta = {
        kind: n - before.get((name, kind), 0) for (name, kind), n in server.request_counts().items() if name == bucket
    }
    return {kind: n for kind, n in delta.items() if n}


def leave_uploads(server: SeaweedServer, bucket: str, keys: list[str]) -> None:
    client = server.client()
    for key in keys:
        client.create_multipart_upload(Bucket=bucket, Key=key)


@pytest.mark.parametrize("listed", [True, False], ids=["plan-listing", "engine-listing"])
def test_one_sweep_per_bucket_aborts_what_lies_under_each_root_only(counted: SeaweedServer, listed: bool) -> None:
    bucket = unique_bucket("sweep")
    counted.create_bucket(bucket)
    # An earlier crash left an upload under each root; "mc/" shares the roots' common prefix "m", "other/" not.
    leave_uploads(counted, bucket, ["ma/x.bin", "mb/y.bin", "mc/z.bin", "other/w.bin"])
    plans = [
        ModelPlan(f"model-{n}", ObjectLocation("upload", bucket, f"m{n}/"), target_listing=() if listed else None)
        for n in "ab"
    ]
    before = counted.request_counts()

    results = run_transfer(plans, {"upload": counted.endpoint("upload")}, EngineSettings(processes=0))

    requests = requests_to(counted, bucket, before)
    assert [r.status for r in results] == ["ok", "ok"]
    assert sorted(u["Key"] for u in list_multipart_uploads(counted, bucket)) == ["mc/z.bin", "other/w.bin"]
    # one ListMultipartUploads (counted as GET) for both roots, the two aborts, and a listing of each root
    # only when the plan brought none
    assert requests == {"GET": 1, "DELETE": 2} | ({} if listed else {"LIST": 2})


def test_an_upload_lists_each_target_once_before_the_copies(tmp_path: Path, counted: SeaweedServer) -> None:
    source, target = unique_bucket("src"), unique_bucket("dst")
    counted.create_bucket(source)
    counted.create_bucket(target)
    runs = (("0", "alpha"), ("1", "beta"), ("2", "gamma"))
    drfc = seed_drfc(tmp_path / "drfc", counted, counted, source, target, runs, checkpoints=(1, 2), scale=0.02)
    leave_uploads(counted, target, ["alpha-up/model/left.bin", "gamma-up/left.bin", "delta-up/kept.bin"])
    before = counted.request_counts()

    first = drfc.run("upload", *drfc.upload_args(), "-f", "--no-progress", "--json")

    requests = requests_to(counted, target, before)
    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["status"] for line in first.stdout.splitlines()] == ["ok"] * 3
    assert requests["LIST"] == 2 * len(runs)  # the check's listing (handed to the engine) and the audit's
    assert requests["GET"] == 1  # one sweep of the bucket's unfinished uploads, no HeadBucket
    assert [u["Key"] for u in list_multipart_uploads(counted, target)] == ["delta-up/kept.bin"]

    # The same upload again: the handed-over listing shows every object there, so nothing is copied.
    before = counted.request_counts()
    again = drfc.run("upload", *drfc.upload_args(), "-f", "--no-progress", "--json")

    requests = requests_to(counted, target, before)
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["ok"] * 3
    assert all(line["skipped"] > 0 for line in lines), lines
    assert "COPY" not in requests and "PUT" not in requests, requests
    assert requests["LIST"] == 2 * len(runs)


@pytest.fixture(scope="module")
def counted_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("weed-counted-target"), count_requests=True)
    yield server
    server.stop(graceful=False)


def test_across_endpoints_each_source_object_is_read_once(
    tmp_path: Path, counted: SeaweedServer, counted_target: SeaweedServer
) -> None:
    source, target = unique_bucket("src"), unique_bucket("dst")
    counted.create_bucket(source)
    counted_target.create_bucket(target)
    runs = (("0", "alpha"), ("1", "beta"))
    drfc = seed_drfc(tmp_path / "drfc", counted, counted_target, source, target, runs, checkpoints=(1, 2), scale=0.02)
    plan = drfc.run("upload", *drfc.upload_args(), "-d", "--no-progress")
    copies = [line for line in plan.stdout.splitlines() if line.lstrip().startswith("copy ")]
    assert plan.returncode == 0 and copies, plan.stdout + plan.stderr
    assert not any("model_metadata.json" in line for line in copies)  # put from the inspected bytes
    before = counted.request_counts()

    done = drfc.run("upload", *drfc.upload_args(), "-f", "--no-progress", "--json")

    assert done.returncode == 0, done.stderr
    requests = requests_to(counted, source, before)
    # per run: one listing; the inspection's reads of the checkpoint index, the model metadata and the
    # training params; then one GET per copied object (all single-part here), none for the metadata
    assert requests == {"LIST": len(runs), "GET": 3 * len(runs) + len(copies)}, (requests, len(copies))
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["ok"] * len(runs)
    for _run_id, prefix in runs:
        metadata = target_bytes(counted, source, f"{prefix}/model/model_metadata.json")
        for key in (f"{prefix}-up/model_metadata.json", f"{prefix}-up/model/model_metadata.json"):
            assert target_bytes(counted_target, target, key) == metadata


def test_the_inspection_reads_each_small_file_once(counted: SeaweedServer) -> None:
    bucket = unique_bucket("src")
    counted.create_bucket(bucket)
    seed_model(counted.client(), bucket, "m", checkpoints=(1, 2), scale=0.02)
    before = counted.request_counts()

    inventory = inspect_model(make_run(counted, bucket, "m"), counted.client())
    metadata = inventory.read(inventory.model_metadata)  # the car packager reads it again

    assert json.loads(metadata) == inventory.metadata
    # one listing, one GET each of the checkpoint index and the model metadata: the second read is the first's
    assert requests_to(counted, bucket, before) == {"LIST": 1, "GET": 2}


def test_a_server_that_cannot_list_uploads_gets_the_note_once(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = request.getfixturevalue("rclone_s3")  # refuses ListMultipartUploads (NoSuchUpload)
    endpoint = Endpoint(name="target", url=url, region="us-east-1", credentials=Credentials("rcak", "rcsecret"))
    plans = [ModelPlan(f"model-{n}", ObjectLocation("target", "target", f"m{n}/"), target_listing=()) for n in "ab"]

    with caplog.at_level(logging.WARNING, logger="drtransfer.engine"):
        results = run_transfer(plans, {"target": endpoint}, EngineSettings(processes=0))

    assert [r.status for r in results] == ["ok", "ok"]
    notes = [
        r.getMessage() for r in caplog.records if "Could not look for unfinished multipart uploads" in r.getMessage()
    ]
    assert len(notes) == 1, notes
    assert "under s3://target/ma/, s3://target/mb/: " in notes[0]
