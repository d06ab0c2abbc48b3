"""Target credentials without the write or the list permission are refused before anything is
written, in one sentence naming the bucket and the missing permission."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtransfer.locals3 import Identity, SeaweedServer
from tests.conftest import list_tree
from tests.reliability.conftest import NO_LIST, NO_WRITE, Setup, make_setup, no_uploads_left, single_sentence


def guarded_setup(
    tmp_path: Path, local_s3: SeaweedServer, local_bucket: str, guarded_s3: SeaweedServer, bucket: str,
    identity: Identity,
) -> Setup:  # fmt: skip
    return make_setup(
        tmp_path, local_s3, guarded_s3, local_bucket, bucket, upload_keys=(identity.access_key, identity.secret_key)
    )


@pytest.mark.parametrize(
    ("identity", "permission"),
    [(NO_WRITE, "Write permission (s3:PutObject)"), (NO_LIST, "List permission (s3:ListBucket)")],
    ids=["no-write", "no-list"],
)
def test_a_missing_permission_is_one_sentence_and_nothing_is_written(
    tmp_path: Path, local_s3: SeaweedServer, local_bucket: str, guarded_s3: SeaweedServer, guarded_bucket: str,
    identity: Identity, permission: str,
) -> None:  # fmt: skip
    setup = guarded_setup(tmp_path, local_s3, local_bucket, guarded_s3, guarded_bucket, identity)

    done = setup.command("upload", *setup.upload_args(), "-f", "--processes", "1")

    assert done.returncode == 2, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert line == (
        f"drtransfer: error: Access denied: the credentials (profile drt-upload) lack the {permission} on bucket "
        f"{guarded_bucket!r} (prefix alpha-up/) of the upload endpoint {guarded_s3.url}; grant it and run the "
        f"command again."
    )
    single_sentence(line)
    assert done.stdout == ""
    assert list_tree(guarded_s3, guarded_bucket) == {}
    no_uploads_left(guarded_s3, guarded_bucket)  # the write check's own upload was aborted or never began


def test_a_dry_run_needs_no_write_permission(
    tmp_path: Path, local_s3: SeaweedServer, local_bucket: str, guarded_s3: SeaweedServer, guarded_bucket: str
) -> None:
    setup = guarded_setup(tmp_path, local_s3, local_bucket, guarded_s3, guarded_bucket, NO_WRITE)

    done = setup.command("upload", *setup.upload_args("0"), "-d", "--processes", "0")

    assert done.returncode == 0, done.stderr
    assert f"put    s3://{guarded_bucket}/alpha-up/model/deepracer_checkpoints.json" in done.stdout
    assert list_tree(guarded_s3, guarded_bucket) == {}
