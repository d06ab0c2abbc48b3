"""An upload over an earlier one at the same target prefix: whatever was there before (another
checkpoint's upload, a car archive, DRfC's own ``upload-model.sh`` layout), the target ends up with every
planned object, and the dry run shows what a real run writes."""

from __future__ import annotations

import json
import time

import yaml

from drtransfer.engine import TransferSubscriber, run_transfer
from drtransfer.engine.messages import TargetState
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ObjectLocation, OperationResult
from drtransfer.samples import checkpoint_name
from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup
from tests.reliability.test_commit_objects import SETTINGS, endpoints, plan_with
from tests.upload.test_upload_command import assert_uploaded, expected_training_params, expected_tree, source_tree

PREFIX, TARGET = "alpha", "alpha-up"  # run 0


def leftovers(drfc: DrfcSetup, number: int) -> dict[str, bytes]:
    """The checkpoint files an earlier upload of checkpoint ``number`` left that a later plan does not
    write (no -w)."""
    src = source_tree(drfc, PREFIX)
    name = checkpoint_name(number)
    keys = [f"model/{name}{s}" for s in (".data-00000-of-00001", ".index", ".meta")] + [f"model/model_{number}.pb"]
    return {f"{TARGET}/{k}": src[k] for k in keys}


def assert_tree(drfc: DrfcSetup, expected: dict[str, bytes]) -> None:
    """The target holds exactly ``expected`` and the planned training_params.yaml."""
    actual = list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")
    params = yaml.safe_load(actual.pop(f"{TARGET}/training_params.yaml"))
    assert params == expected_training_params(drfc, PREFIX, TARGET)
    assert sorted(actual) == sorted(expected)
    for key, body in expected.items():
        assert actual[key] == body, key


def root_metadata_ok(drfc: DrfcSetup) -> None:
    tree = list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")
    source = source_tree(drfc, PREFIX)["model/model_metadata.json"]
    assert tree.get(f"{TARGET}/model_metadata.json") == source


def upload(drfc: DrfcSetup, *flags: str) -> dict[str, object]:
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", "--processes", "0", "--json", *flags)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["status"] == "ok", line
    return line


def test_best_over_an_earlier_last_upload_keeps_the_root_model_metadata(drfc: DrfcSetup) -> None:
    upload(drfc)
    upload(drfc, "-b")
    root_metadata_ok(drfc)
    assert_tree(drfc, {**expected_tree(drfc, PREFIX, TARGET, 2), **leftovers(drfc, 11)})


def test_wipe_best_over_an_earlier_upload_gives_the_exact_layout(drfc: DrfcSetup) -> None:
    upload(drfc)
    upload(drfc, "-w", "-b")
    root_metadata_ok(drfc)
    assert_uploaded(drfc, PREFIX, TARGET, 2)


def test_wipe_upload_over_a_car_archive_and_an_earlier_upload(drfc: DrfcSetup) -> None:
    upload(drfc, "-b")
    car = drfc.run("car-zip", *drfc.upload_args("0"), "-f")
    assert car.returncode == 0, car.stderr
    archive = f"{TARGET}/{TARGET}.tar.gz"
    packaged = list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")[archive]
    upload(drfc, "-w")
    root_metadata_ok(drfc)
    # -w keeps the car package car-zip wrote there; everything else is exactly checkpoint 11's layout.
    assert list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")[archive] == packaged
    drfc.upload.client().delete_object(Bucket=drfc.upload_bucket, Key=archive)
    assert_uploaded(drfc, PREFIX, TARGET, 11)  # checkpoint 2 wiped


def test_the_same_checkpoint_over_drfcs_own_upload(drfc: DrfcSetup) -> None:
    """DRfC's upload-model.sh writes the same model files, but its own index entry and a
    .coach_checkpoint with a newline."""
    src = source_tree(drfc, PREFIX)
    name = checkpoint_name(11)
    entry = {"name": name, "time_stamp": int(time.time()), "avg_comp_pct": 50.0}
    drfc_layout = dict(expected_tree(drfc, PREFIX, TARGET, 11))
    drfc_layout[f"{TARGET}/model/deepracer_checkpoints.json"] = json.dumps(
        {"last_checkpoint": entry, "best_checkpoint": entry}
    ).encode()
    drfc_layout[f"{TARGET}/model/.coach_checkpoint"] = (name + "\n").encode()
    drfc_layout[f"{TARGET}/training_params.yaml"] = src["training_params.yaml"]
    client = drfc.upload.client()
    for key, body in drfc_layout.items():
        client.put_object(Bucket=drfc.upload_bucket, Key=key, Body=body)

    upload(drfc)
    root_metadata_ok(drfc)
    assert_uploaded(drfc, PREFIX, TARGET, 11)


def test_dry_run_over_an_earlier_upload_shows_the_commit_objects_as_written(drfc: DrfcSetup) -> None:
    upload(drfc)
    before = list_tree(drfc.upload, drfc.upload_bucket)
    result = drfc.run("upload", *drfc.upload_args("0"), "-d", "-b", "--processes", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for relative in ("model_metadata.json", "model/deepracer_checkpoints.json", "model/.coach_checkpoint"):
        [line] = [text for text in lines if f" s3://{drfc.upload_bucket}/{TARGET}/{relative} (" in text]
        assert "[skip]" not in line, line  # a real run clears them first and writes them again
    [metadata] = [text for text in lines if f" s3://{drfc.upload_bucket}/{TARGET}/model_metadata.json (" in text]
    assert metadata.lstrip().startswith("put ")  # the inspected bytes, not a second read of the source
    assert list_tree(drfc.upload, drfc.upload_bucket) == before


# ---- the audit at engine level ---------------------------------------------------------------------


class DeleteAfterCommit(TransferSubscriber):
    """Deletes ``key`` behind the engine's back as soon as the commit operation writing ``after`` is done."""

    def __init__(self, server: SeaweedServer, bucket: str, key: str, after: str) -> None:
        self.client, self.bucket, self.key, self.after = server.client(), bucket, key, after

    def on_operation(self, model_id: str, result: OperationResult) -> None:
        if result.operation.target.key == self.after and result.status in ("copied", "put", "skipped"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key)


def test_a_planned_object_gone_after_the_commit_fails_the_model(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    local_s3.client().put_object(Bucket=local_bucket, Key="data", Body=b"model bytes")
    local_s3.client().put_object(Bucket=local_bucket, Key="meta", Body=b"meta")
    plan = plan_with(local_s3, local_bucket, upload_bucket, b"index v1", "meta")
    thief = DeleteAfterCommit(upload_s3, upload_bucket, "t/data", after="t/meta")

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), SETTINGS, [thief])

    assert [r.status for r in result.operations] == ["copied", "put", "copied"]
    assert result.status == "failed"
    assert result.error == (
        f"The upload is incomplete: s3://{upload_bucket}/t/data is missing at the target; run the command again."
    )
    assert list_tree(upload_s3, upload_bucket) == {}  # its commit objects were rolled back


def test_the_audit_names_every_wrong_key() -> None:
    from drtransfer.engine.audit import Expectation, audit

    def at(key: str) -> ObjectLocation:
        return ObjectLocation("upload", "b", f"p/{key}")

    expected = [
        Expectation(at("ok"), 4, ("a" * 32, "f" * 32 + "-1")),
        Expectation(at("missing"), 4),
        Expectation(at("short"), 4),
        Expectation(at("replaced"), 4, ("b" * 32,)),
        Expectation(at("other-shape"), 4, ("b" * 32 + "-2",)),  # listed by its whole MD5: size only
        Expectation(at("wiped"), None),
    ]
    found = {
        at("ok"): TargetState(4, "a" * 32),
        at("short"): TargetState(3, "c" * 32),
        at("replaced"): TargetState(4, "d" * 32),
        at("wiped"): TargetState(1, "e" * 32),
        at("other-shape"): TargetState(4, "9" * 32),
    }
    assert audit(expected, found) == (
        "The upload is incomplete: s3://b/p/missing is missing at the target, s3://b/p/short has 3 bytes at the "
        f"target instead of 4, s3://b/p/replaced has ETag {'d' * 32} at the target instead of {'b' * 32}, "
        "s3://b/p/wiped is still at the target although it was deleted; run the command again."
    )
    assert audit(expected[:1], found) is None
