"""``-1`` through the real commands: the upload goes INTO the incremented prefix (as DRfC's ``-1``), the
earlier upload stays as it was, and the run file is edited only after that run's upload succeeded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.infra.drfc import DrfcSetup
from tests.infra.json_docs import assert_documented
from tests.upload.test_upload_command import assert_uploaded

COMMANDS = [("drtransfer", ["upload"]), ("dr-upload-model", [])]


def tree_state(server: SeaweedServer, bucket: str, prefix: str) -> dict[str, tuple[bytes, object, str]]:
    """Every object under ``prefix``: bytes, LastModified and ETag (a rewrite with equal bytes still shows)."""
    client = server.client()
    out: dict[str, tuple[bytes, object, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"]] = (body, item["LastModified"], item["ETag"])
    return out


def set_upload_prefix(run_file: Path, prefix: str) -> None:
    text = run_file.read_text()
    run_file.write_text(text.replace("DR_UPLOAD_S3_PREFIX=alpha-up\n", f"DR_UPLOAD_S3_PREFIX={prefix}\n"))


@pytest.fixture
def earlier_upload(drfc: DrfcSetup) -> dict[str, tuple[bytes, object, str]]:
    """``inc-7`` holds an earlier upload (checkpoint 2) of run 0; its state before the test's command."""
    set_upload_prefix(drfc.files.run_files[0], "inc-7")
    done = drfc.run("upload", *drfc.upload_args("0"), "-c", "2", "-f", "--processes", "0")
    assert done.returncode == 0, done.stderr
    state = tree_state(drfc.upload, drfc.upload_bucket, "inc-7/")
    assert "inc-7/model/model_2.pb" in state
    return state


@pytest.mark.parametrize(("command", "args"), COMMANDS)
@pytest.mark.parametrize("wipe", [[], ["-w"]])
def test_increment_uploads_into_the_next_prefix_and_leaves_the_earlier_one(
    drfc: DrfcSetup,
    earlier_upload: dict[str, tuple[bytes, object, str]],
    command: str,
    args: list[str],
    wipe: list[str],
) -> None:
    run_file = drfc.files.run_files[0]

    done = drfc.run(*args, *drfc.upload_args("0"), "-1", "-f", *wipe, "--processes", "0", command=command)

    assert done.returncode == 0, done.stderr
    assert_uploaded(drfc, "alpha", "inc-8", 11)  # exactly the layout, under the incremented prefix
    assert tree_state(drfc.upload, drfc.upload_bucket, "inc-7/") == earlier_upload
    assert "DR_UPLOAD_S3_PREFIX=inc-8\n" in run_file.read_text()
    assert f"run 0 (alpha): uploaded s3://{drfc.upload_bucket}/inc-8/" in done.stdout
    assert "run 0 (alpha): DR_UPLOAD_S3_PREFIX is now inc-8" in done.stdout


def test_json_names_the_prefix_written_to_the_run_file(
    drfc: DrfcSetup, earlier_upload: dict[str, tuple[bytes, object, str]]
) -> None:
    done = drfc.run("upload", *drfc.upload_args("0"), "-1", "-f", "--json", "--processes", "0")

    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert_documented("upload", line)
    assert (line["status"], line["target"], line["next_upload_prefix"]) == (
        "ok", f"s3://{drfc.upload_bucket}/inc-8", "inc-8")  # fmt: skip


def test_a_failed_upload_leaves_the_run_file_unchanged(
    drfc: DrfcSetup, earlier_upload: dict[str, tuple[bytes, object, str]]
) -> None:
    run_file = drfc.files.run_files[0]
    before = run_file.read_bytes()
    drfc.local.client().delete_object(Bucket=drfc.local_bucket, Key="alpha/model/model_11.pb")

    done = drfc.run("upload", *drfc.upload_args("0"), "-1", "-f", "--json", "--processes", "0")

    assert done.returncode == 1, done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert_documented("upload", line)
    assert (line["status"], line["target"]) == ("failed", f"s3://{drfc.upload_bucket}/inc-8")
    assert "next_upload_prefix" not in line
    assert run_file.read_bytes() == before
    assert tree_state(drfc.upload, drfc.upload_bucket, "inc-7/") == earlier_upload


@pytest.mark.parametrize(("command", "args"), COMMANDS)
def test_dry_run_shows_the_next_prefix_and_writes_and_edits_nothing(
    drfc: DrfcSetup, earlier_upload: dict[str, tuple[bytes, object, str]], command: str, args: list[str]
) -> None:
    run_file = drfc.files.run_files[0]
    before = run_file.read_bytes()

    done = drfc.run(*args, *drfc.upload_args("0"), "-d", "-1", "-w", command=command)

    assert done.returncode == 0, done.stderr
    target = f"s3://{drfc.upload_bucket}/inc-8"
    source = f"s3://{drfc.local_bucket}/alpha"
    assert f"    {source} -> {target}\n" in done.stderr or f"    from {source}\n    to   {target}\n" in done.stderr
    assert f"run 0 (alpha): would write {target}/" in done.stdout
    assert f"-> {target}/model/model_11.pb" in done.stdout
    assert "inc-7/" not in done.stdout
    assert run_file.read_bytes() == before
    assert tree_state(drfc.upload, drfc.upload_bucket, "") == earlier_upload


def test_a_name_without_a_numeric_suffix_gets_one(drfc: DrfcSetup) -> None:
    run_file = drfc.files.run_files[0]
    set_upload_prefix(run_file, "my-model-final")

    done = drfc.run("upload", *drfc.upload_args("0"), "-1", "-f", "--processes", "0")

    assert done.returncode == 0, done.stderr
    assert_uploaded(drfc, "alpha", "my-model-final-1", 11)
    assert tree_state(drfc.upload, drfc.upload_bucket, "my-model-final/") == {}
    assert "DR_UPLOAD_S3_PREFIX=my-model-final-1\n" in run_file.read_text()
