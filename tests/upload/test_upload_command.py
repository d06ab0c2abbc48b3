"""`drtransfer upload` and `dr-upload-model` end to end: three runs between two real SeaweedFS servers."""

from __future__ import annotations

import json
from typing import Any

import yaml

from drtransfer.samples import checkpoint_name
from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup
from tests.infra.json_docs import assert_documented
from tests.upload.conftest import RUNS


def source_tree(drfc: DrfcSetup, prefix: str) -> dict[str, bytes]:
    return {k.removeprefix(prefix + "/"): v for k, v in list_tree(drfc.local, drfc.local_bucket, prefix + "/").items()}


def expected_tree(drfc: DrfcSetup, prefix: str, target_prefix: str, number: int) -> dict[str, bytes]:
    """The layout the AWS DeepRacer console imports, built from the source: the chosen checkpoint's three files
    and graph, the metadata under ``model/`` and at the root, the reward function, the hyperparameters, the
    metrics, an index naming only that checkpoint and ``.coach_checkpoint``."""
    src = source_tree(drfc, prefix)
    name = checkpoint_name(number)
    index = json.loads(src["model/deepracer_checkpoints.json"])
    # A checkpoint the source index names keeps its entry; another one (-c N) gets a synthesized entry.
    entry = next((e for e in (index["last_checkpoint"], index["best_checkpoint"]) if e["name"] == name), None)
    tree = {f"model/{name}{s}": src[f"model/{name}{s}"] for s in (".data-00000-of-00001", ".index", ".meta")}
    tree[f"model/model_{number}.pb"] = src[f"model/model_{number}.pb"]
    tree["model/model_metadata.json"] = src["model/model_metadata.json"]
    tree["model_metadata.json"] = src["model/model_metadata.json"]
    tree["reward_function.py"] = src["reward_function.py"]
    tree["ip/hyperparameters.json"] = src["ip/hyperparameters.json"]
    tree.update({k: v for k, v in src.items() if k.startswith("metrics/")})
    if entry is not None:
        tree["model/deepracer_checkpoints.json"] = json.dumps(
            {"last_checkpoint": entry, "best_checkpoint": entry}
        ).encode()
    tree["model/.coach_checkpoint"] = name.encode()
    return {f"{target_prefix}/{k}": v for k, v in tree.items()}


def expected_training_params(drfc: DrfcSetup, prefix: str, target_prefix: str) -> dict[str, Any]:
    source = yaml.safe_load(source_tree(drfc, prefix)["training_params.yaml"])
    expected = dict(source)
    for key, value in source.items():
        if key.endswith("_BUCKET") and value == drfc.local_bucket:
            expected[key] = drfc.upload_bucket
        elif isinstance(value, str) and value.startswith(prefix + "/"):
            expected[key] = target_prefix + value[len(prefix) :]
    expected.update(
        SAGEMAKER_SHARED_S3_BUCKET=drfc.upload_bucket,
        SAGEMAKER_SHARED_S3_PREFIX=target_prefix,
        METRICS_S3_BUCKET=drfc.upload_bucket,
        METRICS_S3_OBJECT_KEY=f"{target_prefix}/metrics/TrainingMetrics.json",
        MODEL_METADATA_FILE_S3_KEY=f"{target_prefix}/model/model_metadata.json",
        REWARD_FILE_S3_KEY=f"{target_prefix}/reward_function.py",
    )
    return expected


def assert_uploaded(drfc: DrfcSetup, prefix: str, target_prefix: str, number: int) -> None:
    actual = list_tree(drfc.upload, drfc.upload_bucket, target_prefix + "/")
    params = yaml.safe_load(actual.pop(f"{target_prefix}/training_params.yaml"))
    assert params == expected_training_params(drfc, prefix, target_prefix)
    expected = expected_tree(drfc, prefix, target_prefix, number)
    index_key = f"{target_prefix}/model/deepracer_checkpoints.json"
    if index_key not in expected:  # synthesized entry: its time stamp is the upload's
        index = json.loads(actual.pop(index_key))
        assert index["last_checkpoint"] == index["best_checkpoint"]
        assert index["last_checkpoint"]["name"] == checkpoint_name(number)
        assert isinstance(index["last_checkpoint"]["time_stamp"], float)
    assert sorted(actual) == sorted(expected)
    for key, body in expected.items():
        assert actual[key] == body, key


def test_three_runs_upload_in_the_exact_importable_layout(drfc: DrfcSetup) -> None:
    result = drfc.run("upload", *drfc.upload_args(), "-f", "--processes", "2", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["run_id"] for line in lines] == ["0", "1", "2"]
    for line, (_run_id, prefix) in zip(lines, RUNS, strict=True):
        assert_documented("upload", line)
        assert line["status"] == "ok" and line["error"] is None
        assert line["checkpoint"] == checkpoint_name(11)
        assert line["selection"].startswith("last: ")
        assert line["target"] == f"s3://{drfc.upload_bucket}/{prefix}-up"
        assert_uploaded(drfc, prefix, f"{prefix}-up", 11)

    again = drfc.run("upload", *drfc.upload_args(), "-f", "--processes", "0", "--json")
    assert again.returncode == 0, again.stderr
    for line in map(json.loads, again.stdout.splitlines()):
        assert_documented("upload", line)
        assert line["skipped"] == line["objects"] and line["bytes"] == 0


def test_best_and_exact_checkpoint_number(drfc: DrfcSetup) -> None:
    best = drfc.run("upload", *drfc.upload_args("0"), "-f", "-b", "--processes", "0")
    assert best.returncode == 0, best.stderr
    assert_uploaded(drfc, "alpha", "alpha-up", 2)
    step = drfc.run("upload", *drfc.upload_args("1"), "-f", "-c", "1", "--processes", "0")
    assert step.returncode == 0, step.stderr
    assert_uploaded(drfc, "beta", "beta-up", 1)


def test_missing_checkpoint_number_fails_that_model_only(drfc: DrfcSetup) -> None:
    drfc.local.client().delete_object(Bucket=drfc.local_bucket, Key=f"beta/model/{checkpoint_name(10)}.meta")
    result = drfc.run("upload", *drfc.upload_args(), "-f", "-c", "10", "--processes", "0")
    assert result.returncode == 1
    assert "Checkpoint 10 in s3://" in result.stderr and "is incomplete: missing 10_Step-" in result.stderr
    assert list_tree(drfc.upload, drfc.upload_bucket, "beta-up/") == {}
    assert_uploaded(drfc, "alpha", "alpha-up", 10)
    assert_uploaded(drfc, "gamma", "gamma-up", 10)


def test_dry_run_prints_every_operation_and_writes_nothing(drfc: DrfcSetup) -> None:
    client = drfc.upload.client()
    client.put_object(Bucket=drfc.upload_bucket, Key="alpha-up/model/stale.ckpt.index", Body=b"old")
    result = drfc.run("upload", *drfc.upload_args("0"), "-d", "-w", "--processes", "0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    name = checkpoint_name(11)
    assert (
        f"copy   s3://{drfc.local_bucket}/alpha/model/{name}.data-00000-of-00001 -> "
        f"s3://{drfc.upload_bucket}/alpha-up/model/{name}.data-00000-of-00001" in out
    )
    assert f"put    s3://{drfc.upload_bucket}/alpha-up/model/deepracer_checkpoints.json" in out
    assert f"delete s3://{drfc.upload_bucket}/alpha-up/model/stale.ckpt.index (3 B)" in out
    assert "MiB)" in out or "KiB)" in out
    assert list_tree(drfc.upload, drfc.upload_bucket) == {"alpha-up/model/stale.ckpt.index": b"old"}


def test_wipe_deletes_only_what_is_not_planned_inside_the_prefix(drfc: DrfcSetup) -> None:
    client = drfc.upload.client()
    for key in ("alpha-up/model/stale.ckpt.index", "alpha-up/old/notes.txt", "alpha-up2/keep.txt", "alpha-u/keep"):
        client.put_object(Bucket=drfc.upload_bucket, Key=key, Body=b"x")
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", "-w", "--processes", "0")
    assert result.returncode == 0, result.stderr
    assert_uploaded(drfc, "alpha", "alpha-up", 11)  # exactly the layout: stale objects are gone
    rest = list_tree(drfc.upload, drfc.upload_bucket)
    assert "alpha-up2/keep.txt" in rest and "alpha-u/keep" in rest


def test_prefix_switch_sets_source_and_target(drfc: DrfcSetup) -> None:
    result = drfc.run(
        "upload",
        str(drfc.files.run_files[0]),
        "--system-env",
        str(drfc.files.system_env),
        "-p",
        "gamma",
        "-f",
        "--processes",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert_uploaded(drfc, "gamma", "gamma", 11)


def test_local_target(drfc: DrfcSetup) -> None:
    result = drfc.run("upload", *drfc.upload_args("0"), "-L", "-f", "--processes", "0")
    assert result.returncode == 0, result.stderr
    uploaded = list_tree(drfc.local, drfc.local_bucket, "alpha-up/")
    assert "alpha-up/model/model_11.pb" in uploaded and "alpha-up/model_metadata.json" in uploaded
    same = drfc.run("upload", *drfc.upload_args("0"), "-L", "-p", "alpha", "-f", "--processes", "0")
    assert same.returncode == 2
    assert "Target equals source" in same.stderr


def test_increment_after_success_only(drfc: DrfcSetup) -> None:
    result = drfc.run("upload", *drfc.upload_args("0", "1"), "-1", "-f", "--processes", "0")
    assert result.returncode == 0, result.stderr
    assert "DR_UPLOAD_S3_PREFIX=alpha-up-1\n" in drfc.files.run_files[0].read_text()
    assert "DR_UPLOAD_S3_PREFIX=beta-up-1\n" in drfc.files.run_files[1].read_text()
    drfc.local.client().delete_object(Bucket=drfc.local_bucket, Key="alpha/model/model_11.pb")
    failed = drfc.run("upload", *drfc.upload_args("0"), "-1", "-f", "--processes", "0")
    assert failed.returncode == 1
    assert "DR_UPLOAD_S3_PREFIX=alpha-up-1\n" in drfc.files.run_files[0].read_text()


def test_confirmation_is_required_without_force(drfc: DrfcSetup) -> None:
    result = drfc.run("upload", *drfc.upload_args("0"), "--processes", "0")
    assert result.returncode == 2
    assert "no terminal to ask for confirmation; pass -f" in result.stderr
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_import_without_importer_fails_before_copying(drfc: DrfcSetup) -> None:
    result = drfc.run(
        "upload", *drfc.upload_args("0"), "-f", "-i", "--disable-plugin", "aws-console", "--disable-plugin", "droa"
    )
    assert result.returncode == 2
    assert "No importer installed" in result.stderr
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_dr_upload_model_speaks_drfc(drfc: DrfcSetup) -> None:
    result = drfc.run(*drfc.upload_args("0"), "-d", command="dr-upload-model")
    assert result.returncode == 0, result.stderr
    assert "*** DRYRUN MODE ***" in result.stderr
    no = drfc.run(*drfc.upload_args("0"), "-b", "-c", "3", command="dr-upload-model")
    assert no.returncode == 2 and "Choose one checkpoint" in no.stderr
