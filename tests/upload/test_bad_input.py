"""Every bad input of ``drtransfer upload`` and ``dr-upload-model`` (run files, buckets, endpoints, credentials,
checkpoint choices, switches) ends in one clear sentence, the documented exit code and an unchanged target."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from drtransfer.samples import checkpoint_name
from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup


def single_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, stderr
    return errors[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_refused(drfc: DrfcSetup, args: list[str], code: int, fragment: str, **env: str) -> None:
    result = drfc.run("upload", *args, "-f", "--processes", "0", env=drfc.env(**env) if env else None)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert fragment in (single_error_line(result.stderr) if code == 2 else result.stderr)
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_missing_run_file(drfc: DrfcSetup, tmp_path: Path) -> None:
    assert_refused(drfc, [str(tmp_path / "nope.env"), "--system-env", str(drfc.files.system_env)], 2, "nope.env")


def test_malformed_line_names_file_and_line(drfc: DrfcSetup) -> None:
    run_file = drfc.files.run_files[0]
    run_file.write_text(run_file.read_text() + "THIS IS NOT AN ASSIGNMENT\n")
    assert_refused(drfc, drfc.upload_args("0"), 2, f"{run_file.name} line 9")


def test_no_upload_bucket(drfc: DrfcSetup) -> None:
    system = drfc.files.system_env
    system.write_text(system.read_text().replace(f"DR_UPLOAD_S3_BUCKET={drfc.upload_bucket}", "DR_UPLOAD_S3_BUCKET="))
    assert_refused(drfc, drfc.upload_args("0"), 2, "DR_UPLOAD_S3_BUCKET")


def test_no_upload_prefix(drfc: DrfcSetup) -> None:
    run_file = drfc.files.run_files[0]
    run_file.write_text(run_file.read_text().replace("DR_UPLOAD_S3_PREFIX=alpha-up", "DR_UPLOAD_S3_PREFIX="))
    assert_refused(drfc, drfc.upload_args("0"), 2, "DR_UPLOAD_S3_PREFIX")


def test_unreachable_endpoint(drfc: DrfcSetup) -> None:
    system = drfc.files.system_env
    system.write_text(system.read_text().replace(drfc.upload.url, f"http://127.0.0.1:{free_port()}"))
    assert_refused(drfc, drfc.upload_args("0"), 2, "Cannot reach the upload endpoint http://127.0.0.1:")


def test_wrong_credentials_never_printed(drfc: DrfcSetup) -> None:
    creds = drfc.files.credentials
    creds.write_text(creds.read_text().replace(drfc.upload.secret_key, "wrong-secret-value"))
    assert_refused(drfc, drfc.upload_args("0"), 2, "refused the credentials (profile drt-upload)")
    result = drfc.run("upload", *drfc.upload_args("0"), "-f")
    assert "wrong-secret-value" not in result.stderr + result.stdout


def test_missing_buckets(drfc: DrfcSetup) -> None:
    system = drfc.files.system_env
    original = system.read_text()
    system.write_text(original.replace(f"DR_UPLOAD_S3_BUCKET={drfc.upload_bucket}", "DR_UPLOAD_S3_BUCKET=no-such-up"))
    result = drfc.run("upload", *drfc.upload_args("0"), "-f")
    assert result.returncode == 2 and "'no-such-up' does not exist" in single_error_line(result.stderr)
    system.write_text(original.replace(f"DR_LOCAL_S3_BUCKET={drfc.local_bucket}", "DR_LOCAL_S3_BUCKET=no-such-local"))
    assert_refused(drfc, drfc.upload_args("0"), 2, "'no-such-local' does not exist")


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("model/deepracer_checkpoints.json", "nothing at s3://{b}/alpha/model/deepracer_checkpoints.json"),
        (f"model/{checkpoint_name(11)}.index", "its files were deleted since it was written"),
        ("model/model_metadata.json", "nothing at s3://{b}/alpha/model/model_metadata.json"),
        ("ip/hyperparameters.json", "nothing at s3://{b}/alpha/ip/hyperparameters.json"),
    ],
)
def test_model_errors_fail_the_model_with_exit_1(drfc: DrfcSetup, key: str, fragment: str) -> None:
    drfc.local.client().delete_object(Bucket=drfc.local_bucket, Key=f"alpha/{key}")
    assert_refused(drfc, drfc.upload_args("0"), 1, fragment.format(b=drfc.local_bucket))


def test_checkpoint_number_not_present(drfc: DrfcSetup) -> None:
    assert_refused(drfc, [*drfc.upload_args("0"), "-c", "7"], 1, "Checkpoint 7 is not in")


def test_duplicate_runs(drfc: DrfcSetup) -> None:
    copy = drfc.files.run_files[0].with_name("copy.env")
    copy.write_text(drfc.files.run_files[0].read_text())
    assert_refused(
        drfc, [str(drfc.files.run_files[0]), str(copy), "--system-env", str(drfc.files.system_env)], 2, "copy.env"
    )


def test_wipe_with_empty_prefix(drfc: DrfcSetup) -> None:
    run_file = drfc.files.run_files[0]
    run_file.write_text(run_file.read_text().replace("DR_UPLOAD_S3_PREFIX=alpha-up", "DR_UPLOAD_S3_PREFIX=/"))
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", "-w")
    assert result.returncode == 2
    assert "prefix" in single_error_line(result.stderr)
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_unknown_checkpoint_expression_lists_known_ones(drfc: DrfcSetup) -> None:
    expression = "no-such-selector-7f3a"  # no plugin takes it; an installed one may well take a real word
    assert_refused(drfc, [*drfc.upload_args("0"), "--checkpoint", expression], 2, "known expressions: last")


def test_import_options_without_an_import_are_refused(drfc: DrfcSetup) -> None:
    assert_refused(
        drfc,
        [*drfc.upload_args("0"), "--to", "droa", "--wait"],
        2,
        "--to, --wait only apply to an import: add -i or -I NAME",
    )


@pytest.mark.parametrize("command", ["drtransfer", "dr-upload-model"])
@pytest.mark.parametrize("number", ["-1", "abc", "1.5", "+3"])
def test_a_checkpoint_number_that_is_not_a_whole_number_names_the_switch(
    drfc: DrfcSetup, command: str, number: str
) -> None:
    args = ["upload"] if command == "drtransfer" else []
    result = drfc.run(*args, *drfc.upload_args("0"), "-c", number, "-f", "--processes", "0", command=command)
    assert result.returncode == 2, result.stderr
    assert single_error_line(result.stderr) == (
        f"{command}: error: -c {number}: the checkpoint number must be a whole number >= 0, e.g. -c 12."
    )
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_local_target_with_prefix_names_the_prefix_switch(drfc: DrfcSetup) -> None:
    before = list_tree(drfc.local, drfc.local_bucket)
    result = drfc.run("upload", *drfc.upload_args("0"), "-L", "-p", "alpha", "-f", "--processes", "0")
    assert result.returncode == 2, result.stderr
    line = single_error_line(result.stderr)
    assert line.endswith(
        f"(s3://{drfc.local_bucket}/alpha): -p alpha sets both the source and the target prefix, and -L uploads "
        f"into the source bucket, so the model would be uploaded onto itself; drop -p or -L."
    )
    assert "DR_UPLOAD_S3_PREFIX" not in line
    assert list_tree(drfc.local, drfc.local_bucket) == before
