"""Car packages streamed from S3 (SeaweedFS): the chosen checkpoint's graph and the metadata, several
runs at once, opened member by member; a model the car would refuse fails alone, and archives go to an
output directory atomically or to the upload or local bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drtransfer.errors import ConfigError, ModelError
from drtransfer.events import CheckpointSelected, Event
from drtransfer.locals3 import SeaweedServer
from drtransfer.packaging import (
    Packager,
    PackageRequest,
    archive_location,
    build_packages,
    get_packager,
    upload_packages,
    write_package,
)
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.samples import seed_model
from tests.carzip.conftest import make_run, read_archive
from tests.conftest import list_tree, unique_bucket

SCALE = 0.01  # ~220 KiB graphs: the layout and the bytes are what matter here


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return get_plugin_manager()


@pytest.fixture(scope="module")
def car(host: PluginHost) -> Packager:
    return get_packager(host, "car")


def source_bytes(server: SeaweedServer, bucket: str, key: str) -> bytes:
    body: bytes = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def seed_runs(server: SeaweedServer, bucket: str) -> list[tuple[RunConfig, Any]]:
    """Three runs whose last, best and other checkpoints all differ."""
    out = []
    for run_id, checkpoints, best in (("0", (1, 2, 3), 2), ("1", (4, 5, 6, 7), 5), ("2", (10, 11), 10)):
        prefix = f"rl-run-{run_id}"
        seeded = seed_model(server.client(), bucket, prefix, checkpoints=checkpoints, best=best, scale=SCALE)
        out.append((make_run(server, bucket, prefix, run_id=run_id), seeded))
    return out


@pytest.fixture(scope="module")
def shared(local_s3: SeaweedServer) -> tuple[str, list[tuple[RunConfig, Any]]]:
    """Three seeded runs for the tests that only read them."""
    bucket = unique_bucket("carzip")
    local_s3.create_bucket(bucket)
    return bucket, seed_runs(local_s3, bucket)


def assert_car_archive(server: SeaweedServer, bucket: str, data: bytes, prefix: str, number: int) -> None:
    members = read_archive(data)
    assert list(members) == ["agent/model.pb", "model_metadata.json"]
    assert members["agent/model.pb"] == source_bytes(server, bucket, f"{prefix}/model/model_{number}.pb")
    assert members["model_metadata.json"] == source_bytes(server, bucket, f"{prefix}/model/model_metadata.json")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("last", {"0": 3, "1": 7, "2": 11}), ("best", {"0": 2, "1": 5, "2": 10}), (None, {"0": 3, "1": 7, "2": 11})],
)
def test_several_runs_get_the_selected_checkpoint(
    local_s3: SeaweedServer,
    shared: tuple[str, list[tuple[RunConfig, Any]]],
    host: PluginHost,
    car: Packager,
    expression: str | None,
    expected: dict[str, int],
) -> None:
    local_bucket, runs = shared
    events: list[Event] = []
    outcomes = build_packages(
        [run for run, _ in runs], PackageRequest(checkpoint=expression), car, host, on_event=events.append
    )
    assert [o.error for o in outcomes] == [None, None, None]
    for outcome, (run, _seeded) in zip(outcomes, runs, strict=True):
        package = outcome.package
        assert package is not None and package.run == run
        assert package.filename == f"{run.model_prefix}-1.tar.gz"
        assert package.checkpoint is not None and package.checkpoint.startswith(f"{expected[run.run_id]}_Step-")
        assert_car_archive(local_s3, local_bucket, package.data, run.model_prefix, expected[run.run_id])
    assert sorted(e.run_id for e in events if isinstance(e, CheckpointSelected)) == ["0", "1", "2"]


def test_a_step_selection_packages_that_checkpoint(
    local_s3: SeaweedServer, shared: tuple[str, list[tuple[RunConfig, Any]]], host: PluginHost, car: Packager
) -> None:
    local_bucket, runs = shared
    [outcome] = build_packages([runs[1][0]], PackageRequest(checkpoint="step:6"), car, host)
    assert outcome.package is not None, outcome.error
    assert_car_archive(local_s3, local_bucket, outcome.package.data, "rl-run-1", 6)


def test_output_dir_gets_each_archive_atomically(
    local_s3: SeaweedServer,
    shared: tuple[str, list[tuple[RunConfig, Any]]],
    host: PluginHost,
    car: Packager,
    tmp_path: Path,
) -> None:
    local_bucket, runs = shared
    outcomes = build_packages([run for run, _ in runs], PackageRequest(), car, host)
    out = tmp_path / "cars"
    paths = [write_package(o.package, out) for o in outcomes if o.package is not None]
    assert sorted(p.name for p in out.iterdir()) == ["rl-run-0-1.tar.gz", "rl-run-1-1.tar.gz", "rl-run-2-1.tar.gz"]
    for path, (run, seeded) in zip(paths, runs, strict=True):
        assert_car_archive(local_s3, local_bucket, path.read_bytes(), run.model_prefix, seeded.last)


def test_upload_to_the_upload_bucket_and_with_local_bucket(
    local_s3: SeaweedServer,
    upload_s3: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
    host: PluginHost,
    car: Packager,
) -> None:
    # Its own local bucket: -L writes next to the models.
    runs = [
        (
            make_run(
                local_s3,
                local_bucket,
                run.model_prefix,
                run_id=run.run_id,
                upload=upload_s3.endpoint("upload"),
                upload_bucket=upload_bucket,
                upload_prefix=f"car.v{run.run_id}",
            ),
            seeded,
        )
        for run, seeded in seed_runs(local_s3, local_bucket)
    ]
    outcomes = build_packages([run for run, _ in runs], PackageRequest(), car, host)
    packages = [o.package for o in outcomes if o.package is not None]
    assert [p.notes for p in packages] == [
        (f"archive named 'car-v{i}' instead of 'car.v{i}': the car accepts only [A-Za-z0-9_-] (no dots)",)
        for i in range(3)
    ]
    assert archive_location(packages[0]).url == f"s3://{upload_bucket}/car.v0/car-v0.tar.gz"
    assert archive_location(packages[0], local_bucket=True).url == f"s3://{local_bucket}/rl-run-0/car-v0.tar.gz"

    results = upload_packages(packages)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    uploaded = list_tree(upload_s3, upload_bucket)
    assert sorted(uploaded) == [f"car.v{i}/car-v{i}.tar.gz" for i in range(3)]
    for (run, seeded), package in zip(runs, packages, strict=True):
        assert uploaded[f"car.v{run.run_id}/car-v{run.run_id}.tar.gz"] == package.data
        assert_car_archive(local_s3, local_bucket, package.data, run.model_prefix, seeded.last)

    results = upload_packages(packages[:1], local_bucket=True)
    assert [r.status for r in results] == ["ok"]
    assert source_bytes(local_s3, local_bucket, "rl-run-0/car-v0.tar.gz") == packages[0].data


def test_a_model_the_car_refuses_fails_alone_and_nothing_is_built_for_it(
    local_s3: SeaweedServer, local_bucket: str, host: PluginHost, car: Packager
) -> None:
    runs = seed_runs(local_s3, local_bucket)
    client = local_s3.client()
    meta_key = "rl-run-1/model/model_metadata.json"
    metadata = json.loads(source_bytes(local_s3, local_bucket, meta_key))
    metadata["sensor"] = ["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"]
    client.put_object(Bucket=local_bucket, Key=meta_key, Body=json.dumps(metadata).encode())

    outcomes = build_packages([run for run, _ in runs], PackageRequest(), car, host)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, ModelError) and outcomes[1].package is None
    assert "run 1 (rl-run-1)" in str(outcomes[1].error)
    assert "does not support the sensor(s) DISCRETIZED_SECTOR_LIDAR" in str(outcomes[1].error)


def test_missing_checkpoint_graph_and_conflicting_names_are_clear_errors(
    local_s3: SeaweedServer, local_bucket: str, host: PluginHost, car: Packager
) -> None:
    runs = seed_runs(local_s3, local_bucket)
    local_s3.client().delete_object(Bucket=local_bucket, Key="rl-run-0/model/model_3.pb")
    [outcome] = build_packages([runs[0][0]], PackageRequest(), car, host)
    assert isinstance(outcome.error, ModelError)
    assert "model_3.pb" in str(outcome.error)

    twin = make_run(local_s3, local_bucket, "rl-run-2", run_id="9", upload_prefix=runs[0][0].upload_prefix)
    with pytest.raises(ConfigError, match=r"run 0 \(rl-run-0\) and run 9 \(rl-run-2\) would both produce rl-run-0-1"):
        build_packages([runs[0][0], twin], PackageRequest(), car, host)
    with pytest.raises(ConfigError, match="source 'ftp' is not supported; choose one of s3, container"):
        build_packages([runs[1][0]], PackageRequest(source="ftp"), car, host)
