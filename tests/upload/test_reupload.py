"""An upload over an earlier one at the same target prefix: whatever was there before (another
checkpoint's upload, a car archive, DRfC's own ``upload-model.sh`` layout), the target ends up with every
planned object, and the dry run shows what a real run writes."""

from __future__ import annotations

import json
import time

import yaml

from drtransfer.samples import checkpoint_name
from tests.conftest import list_tree
from tests.upload.conftest import Drfc
from tests.upload.test_upload_command import assert_uploaded, expected_training_params, expected_tree, source_tree

PREFIX, TARGET = "alpha", "alpha-up"  # run 0


def leftovers(drfc: Drfc, number: int) -> dict[str, bytes]:
    """The checkpoint files an earlier upload of checkpoint ``number`` left that a later plan does not
    write (no -w)."""
    src = source_tree(drfc, PREFIX)
    name = checkpoint_name(number)
    keys = [f"model/{name}{s}" for s in (".data-00000-of-00001", ".index", ".meta")] + [f"model/model_{number}.pb"]
    return {f"{TARGET}/{k}": src[k] for k in keys}


def assert_tree(drfc: Drfc, expected: dict[str, bytes]) -> None:
    """The target holds exactly ``expected`` and the planned training_params.yaml."""
    actual = list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")
    params = yaml.safe_load(actual.pop(f"{TARGET}/training_params.yaml"))
    assert params == expected_training_params(drfc, PREFIX, TARGET)
    assert sorted(actual) == sorted(expected)
    for key, body in expected.items():
        assert actual[key] == body, key


def root_metadata_ok(drfc: Drfc) -> None:
    tree = list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")
    source = source_tree(drfc, PREFIX)["model/model_metadata.json"]
    assert tree.get(f"{TARGET}/model_metadata.json") == source


def upload(drfc: Drfc, *flags: str) -> dict[str, object]:
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", "--processes", "0", "--json", *flags)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["status"] == "ok", line
    return line


def test_best_over_an_earlier_last_upload_keeps_the_root_model_metadata(drfc: Drfc) -> None:
    upload(drfc)
    upload(drfc, "-b")
    root_metadata_ok(drfc)
    assert_tree(drfc, {**expected_tree(drfc, PREFIX, TARGET, 2), **leftovers(drfc, 11)})


def test_wipe_best_over_an_earlier_upload_gives_the_exact_layout(drfc: Drfc) -> None:
    upload(drfc)
    upload(drfc, "-w", "-b")
    root_metadata_ok(drfc)
    assert_uploaded(drfc, PREFIX, TARGET, 2)


def test_wipe_upload_over_a_car_archive_and_an_earlier_upload(drfc: Drfc) -> None:
    upload(drfc, "-b")
    car = drfc.run("car-zip", *drfc.upload_args("0"), "-f")
    assert car.returncode == 0, car.stderr
    assert f"{TARGET}/{TARGET}.tar.gz" in list_tree(drfc.upload, drfc.upload_bucket, TARGET + "/")
    upload(drfc, "-w")
    root_metadata_ok(drfc)
    assert_uploaded(drfc, PREFIX, TARGET, 11)  # the archive and checkpoint 2 wiped


def test_the_same_checkpoint_over_drfcs_own_upload(drfc: Drfc) -> None:
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


def test_dry_run_over_an_earlier_upload_shows_the_commit_objects_as_written(drfc: Drfc) -> None:
    upload(drfc)
    before = list_tree(drfc.upload, drfc.upload_bucket)
    result = drfc.run("upload", *drfc.upload_args("0"), "-d", "-b", "--processes", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for relative in ("model_metadata.json", "model/deepracer_checkpoints.json", "model/.coach_checkpoint"):
        [line] = [text for text in lines if f" s3://{drfc.upload_bucket}/{TARGET}/{relative} (" in text]
        assert "[skip]" not in line, line  # a real run clears them first and writes them again
    [metadata] = [text for text in lines if f"-> s3://{drfc.upload_bucket}/{TARGET}/model_metadata.json (" in text]
    assert metadata.lstrip().startswith("copy ")
    assert list_tree(drfc.upload, drfc.upload_bucket) == before
