"""Which reward function an upload carries: ``-p PREFIX`` never takes the run's current
``custom_files/reward_function.py``; ``--reward-function PATH_OR_S3_URL`` replaces the model's own.
Run through the installed ``drtransfer`` and ``dr-upload-model`` commands."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from drtransfer.samples import seed_model
from tests.conftest import list_multipart_uploads, list_tree
from tests.infra.drfc import DrfcSetup
from tests.upload.conftest import SCALE

CURRENT_TRAINING_REWARD = b"def reward_function(params):\n    return 0.5  # the run's current training\n"


def seed_prefix_without_reward(drfc: DrfcSetup, prefix: str = "case-c") -> None:
    """A model at ``prefix`` whose root has no reward_function.py, next to the run's current custom_files one."""
    client = drfc.local.client()
    seed_model(client, drfc.local_bucket, prefix, checkpoints=(1, 2), best=1, scale=SCALE)
    client.delete_object(Bucket=drfc.local_bucket, Key=f"{prefix}/reward_function.py")
    client.put_object(Bucket=drfc.local_bucket, Key="custom_files/reward_function.py", Body=CURRENT_TRAINING_REWARD)


def uploaded(drfc: DrfcSetup, key: str) -> bytes:
    body: bytes = drfc.upload.client().get_object(Bucket=drfc.upload_bucket, Key=key)["Body"].read()
    return body


def assert_nothing_written(drfc: DrfcSetup) -> None:
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}
    assert list_multipart_uploads(drfc.upload, drfc.upload_bucket) == []


@pytest.mark.parametrize("command", ["drtransfer", "dr-upload-model"])
def test_p_on_a_prefix_without_reward_function_is_refused_naming_it(drfc: DrfcSetup, command: str) -> None:
    seed_prefix_without_reward(drfc)
    args = ["upload"] if command == "drtransfer" else []
    result = drfc.run(*args, *drfc.upload_args("0"), "-p", "case-c", "-f", command=command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"s3://{drfc.local_bucket}/case-c/reward_function.py" in lines[0]
    assert "--reward-function PATH_OR_S3_URL" in lines[0]
    assert_nothing_written(drfc)


def test_only_p_loses_the_fallback_the_runs_own_prefix_keeps_it(drfc: DrfcSetup, tmp_path: Path) -> None:
    seed_prefix_without_reward(drfc, "case-c")
    refused = drfc.run("upload", *drfc.upload_args("0"), "-p", "case-c", "-f")
    assert refused.returncode == 2, refused.stderr
    assert_nothing_written(drfc)

    # The same kind of model as the run's own prefix: its current custom_files reward function is the model's.
    run_file = tmp_path / "run-own.env"
    run_file.write_text(
        drfc.files.run_files[0].read_text().replace("DR_LOCAL_S3_MODEL_PREFIX=alpha", "DR_LOCAL_S3_MODEL_PREFIX=case-c")
    )
    result = drfc.run("upload", str(run_file), "--system-env", str(drfc.files.system_env), "-f")
    assert result.returncode == 0, result.stderr
    assert uploaded(drfc, "alpha-up/reward_function.py") == CURRENT_TRAINING_REWARD


def test_reward_function_from_a_local_file_with_p(drfc: DrfcSetup, tmp_path: Path) -> None:
    seed_prefix_without_reward(drfc)
    local = tmp_path / "local.py"
    local.write_bytes(b"def reward_function(params):\n    return 2.0  # kept beside the model\n")
    result = drfc.run("upload", *drfc.upload_args("0"), "-p", "case-c", "--reward-function", str(local), "-f")
    assert result.returncode == 0, result.stderr
    assert uploaded(drfc, "case-c/reward_function.py") == local.read_bytes()


def test_reward_function_from_s3_replaces_the_models_own(drfc: DrfcSetup) -> None:
    body = b"def reward_function(params):\n    return 3.0  # archived elsewhere\n"
    drfc.local.client().put_object(Bucket=drfc.local_bucket, Key="archive/alpha/reward_function.py", Body=body)
    url = f"s3://{drfc.local_bucket}/archive/alpha/reward_function.py"
    result = drfc.run(*drfc.upload_args("0"), "--reward-function", url, "-f", command="dr-upload-model")
    assert result.returncode == 0, result.stderr
    assert drfc.models["0"].files["reward_function.py"] != body
    assert uploaded(drfc, "alpha-up/reward_function.py") == body


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("{tmp}/missing.py", "{tmp}/missing.py"),
        ("{tmp}", "{tmp}"),
        ("s3://{bucket}/nowhere/reward_function.py", "s3://{bucket}/nowhere/reward_function.py"),
        ("s3://{bucket}", "s3://{bucket}"),
    ],
)
def test_a_reward_function_that_is_not_there_is_one_sentence_and_nothing_written(
    drfc: DrfcSetup, tmp_path: Path, given: str, named: str
) -> None:
    values = {"tmp": str(tmp_path), "bucket": drfc.local_bucket}
    result = drfc.run("upload", *drfc.upload_args("0"), "--reward-function", given.format(**values), "-f")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("drtransfer: error: --reward-function ")
    assert named.format(**values) in lines[0]
    assert_nothing_written(drfc)


def test_an_unreadable_reward_file_is_one_sentence(drfc: DrfcSetup) -> None:
    # A Unix socket cannot be opened as a file, not even by root (ENXIO): an unreadable path wherever
    # the tests run. Socket paths are short (108 bytes), so it lives in a short temporary directory.
    with tempfile.TemporaryDirectory(dir="/tmp") as short, socket.socket(socket.AF_UNIX) as sock:
        secret = Path(short) / "reward.py"
        sock.bind(str(secret))
        result = drfc.run("upload", *drfc.upload_args("0"), "--reward-function", str(secret), "-f")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"--reward-function {secret} cannot be read" in result.stderr
    assert_nothing_written(drfc)
