"""Local files are written under a temporary name and renamed only when complete, so a full disk
(a 2 MiB tmpfs mounted for the test) leaves no partial file and the old file intact; malformed
``deepracer_checkpoints.json``, ``model_metadata.json``, training parameters and env files each end in
one clear sentence."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.conftest import list_tree
from tests.reliability.conftest import Setup, make_setup, single_sentence

RUNS4 = (("0", "alpha"), ("1", "beta"), ("2", "gamma"), ("3", "delta"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (the tests run as root). Never skipped: without it the test fails."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a 2 MiB tmpfs at {mount} (root is needed): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> None:
    """Take every free byte of the file system that holds ``directory``."""
    with (directory / ".filler").open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("drtransfer: error: "), lines[0]
    single_sentence(lines[0])
    return lines[0]


def test_a_car_package_that_does_not_fit_leaves_no_partial_file(
    tmp_path: Path, small_disk: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str,
    upload_bucket: str,
) -> None:  # fmt: skip
    setup = make_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, scale=0.2, runs=RUNS4[:1])
    old = small_disk / "alpha-up.tar.gz"
    old.write_bytes(b"the archive of an earlier run")

    done = setup.command("car-zip", *setup.upload_args("0"), "--output", str(small_disk), "--no-upload")

    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert f"Cannot write {old}: No space left on device" in line
    assert sorted(p.name for p in small_disk.iterdir()) == ["alpha-up.tar.gz"]  # no temporary file left
    assert old.read_bytes() == b"the archive of an earlier run"  # the earlier archive is intact


def test_increment_on_a_full_disk_keeps_the_run_file_and_says_so(
    tmp_path: Path, small_disk: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str,
    upload_bucket: str,
) -> None:  # fmt: skip
    setup = make_setup(small_disk, local_s3, upload_s3, local_bucket, upload_bucket, runs=RUNS4[:1])
    run_file = setup.files.run_files[0]
    before = run_file.read_bytes()
    fill(small_disk)

    done = setup.command("upload", *setup.upload_args("0"), "-1", "-f", "--processes", "0")

    assert done.returncode == 1, done.stderr
    assert f"run 0 (alpha): uploaded s3://{upload_bucket}/alpha-up-1/" in done.stdout  # the upload itself stands
    [line] = [line for line in done.stderr.splitlines() if "-1 FAILED" in line]
    assert line == (
        f"run 0 (alpha): -1 FAILED: Cannot rewrite {run_file}: No space left on device; it was left unchanged, "
        f"free space or fix its permissions (or edit it by hand)."
    )
    assert run_file.read_bytes() == before
    assert sorted(p.name for p in run_file.parent.iterdir() if p.name.startswith(".")) == []  # no temporary file


@pytest.mark.parametrize(
    "cases",
    [
        {
            "alpha/model/deepracer_checkpoints.json": (b"{not json", "is not valid JSON (Expecting property name"),
            "beta/model/deepracer_checkpoints.json": (
                b'{"last_checkpoint": 5}',
                "last_checkpoint must be an object with a string 'name'",
            ),
            "gamma/model/model_metadata.json": (b"\xff\xfe\x00junk", "is not valid JSON ("),
            "delta/training_params.yaml": (
                b"a: [unclosed",
                # libyaml and PyYAML's own parser word the reason differently; both name what was expected
                "expected ',' or ']'",
            ),
        },
        {
            "alpha/model/deepracer_checkpoints.json": (b"[]", "must hold a JSON object with last_checkpoint"),
            "beta/model/model_metadata.json": (b'{"sensor": ["FRONT_FACING_CAMERA"]}', "has no action_space"),
            "gamma/model/deepracer_checkpoints.json": (
                b'{"last_checkpoint": {"name": "latest"}}',
                "which is not a checkpoint name like 12_Step-3456.ckpt",
            ),
            "delta/model/deepracer_checkpoints.json": (b"{}", "names neither a last nor a best checkpoint"),
        },
    ],
    ids=["syntax", "shape"],
)
def test_malformed_model_files_fail_their_model_in_one_sentence(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    cases: dict[str, tuple[bytes, str]],
) -> None:  # fmt: skip
    setup = make_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, runs=RUNS4)
    client = local_s3.client()
    for key, (body, _) in cases.items():
        client.put_object(Bucket=local_bucket, Key=key, Body=body)

    done = setup.command("upload", *setup.upload_args(), "-f", "--processes", "0")

    assert done.returncode == 1, done.stderr
    failures = [line for line in done.stderr.splitlines() if ": FAILED: " in line]
    assert len(failures) == len(cases), done.stderr
    for (key, (_, fragment)), (_run_id, prefix) in zip(cases.items(), RUNS4, strict=True):
        [line] = [line for line in failures if line.startswith(f"run {_run_id} ({prefix}): FAILED: ")]
        assert f"s3://{local_bucket}/{key}" in line and fragment in line, line
        single_sentence(line)
    assert "Traceback" not in done.stderr
    assert list_tree(upload_s3, upload_bucket) == {}


def break_line(setup: Setup, which: str, content: bytes | None) -> Path:
    path = setup.files.system_env if which == "system" else setup.files.run_files[0]
    if content is None:  # a directory where the file should be
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(path.read_bytes() + content)
    return path


@pytest.mark.parametrize(
    ("which", "content", "fragment"),
    [
        ("run", b"DR_WORLD_NAME=caf\xe9\n", "is not UTF-8 text (byte "),
        ("run", b'DR_UPLOAD_S3_PREFIX="alpha-up\n', "line 9: "),
        ("run", b"DR_CAR_NAME=fast\r\n", "line 9: "),
        ("run", b"DR_CAR_NAME=$(whoami)\n", "line 9: "),
        ("run", b"DR_CAR_NAME = fast\n", "line 9: "),
        ("system", b"DR_UPLOAD_S3_BUCKET=a b\n", "line 10: "),
        ("run", None, "is a directory, not an env file"),
    ],
    ids=["not-utf8", "open-quote", "crlf", "command", "spaces", "system-file", "directory"],
)
def test_malformed_env_files_are_one_sentence(setup: Setup, which: str, content: bytes | None, fragment: str) -> None:
    path = break_line(setup, which, content)

    done = setup.command("upload", *setup.upload_args("0"), "-f", "--processes", "0")

    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert f"{path}" in line and fragment in line, line
    assert list_tree(setup.upload, setup.upload_bucket) == {}
