"""``--bandwidth-limit RATE`` on the commands that move bytes through the engine: a bad rate is one sentence
with exit code 2 and nothing written; a good one reaches the engine (the upload takes at least its bytes
over the limit)."""

from __future__ import annotations

import time

import pytest

from drtransfer.engine.throttle import MAX_CHUNK
from tests.conftest import list_tree
from tests.infra.drfc import DrfcSetup
from tests.upload.test_bad_input import single_error_line


@pytest.mark.parametrize(
    ("command", "rate", "fragment"),
    [
        ("upload", "0", "--bandwidth-limit: '0' must be more than 0 bytes per second."),
        ("upload", "fast", "--bandwidth-limit: 'fast' is not a rate; write e.g. 20MB/s, 500KB/s or 1048576"),
        ("backup", "-1MB/s", "--bandwidth-limit: '-1MB/s' is not a rate"),
        ("car-zip", "0KB/s", "--bandwidth-limit: '0KB/s' must be more than 0 bytes per second."),
    ],
)
def test_a_bad_rate_is_one_sentence_and_exit_2(drfc: DrfcSetup, command: str, rate: str, fragment: str) -> None:
    result = drfc.run(command, *drfc.upload_args("0"), "-f", "--bandwidth-limit", rate)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert fragment in single_error_line(result.stderr)
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_a_bad_rate_in_drtransfer_engine_is_refused(drfc: DrfcSetup) -> None:
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", env=drfc.env(DRTRANSFER_ENGINE="bandwidth_limit=fast"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "DRTRANSFER_ENGINE: bandwidth_limit='fast' is not a valid rate." in single_error_line(result.stderr)
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}


def test_the_limit_paces_the_upload(drfc: DrfcSetup) -> None:
    limit = 256 * 1024  # bytes per second
    started = time.monotonic()
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", "--processes", "0", "--bandwidth-limit", "256KB/s")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (result.stdout, result.stderr)
    written = sum(map(len, list_tree(drfc.upload, drfc.upload_bucket).values()))
    assert written > 4 * MAX_CHUNK  # enough bytes for the bound below to mean something
    assert elapsed >= (written - MAX_CHUNK) / limit, (elapsed, written / limit)


@pytest.mark.parametrize("command", ["restore", "import"])
def test_restore_and_import_refuse_a_bad_rate(drfc: DrfcSetup, command: str) -> None:
    run_file = str(drfc.files.run_files[0])
    args = {
        "restore": ["restore", f"s3://{drfc.upload_bucket}/alpha-up", "--as", "alpha-2", "--run-file", run_file],
        "import": ["import", run_file, "--system-env", str(drfc.files.system_env), "--to", "aws-console"],
    }[command]
    result = drfc.run(*args, "--bandwidth-limit", "20 furlongs")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--bandwidth-limit: '20 furlongs' is not a rate" in single_error_line(result.stderr)
    assert list_tree(drfc.local, drfc.local_bucket, "alpha-2/") == {}


@pytest.mark.parametrize("switches", [[], ["-A"]])
def test_dr_upload_model_passes_the_rate_on(drfc: DrfcSetup, switches: list[str]) -> None:
    """dr-upload-model takes the option for an upload and for its -A backup alike."""
    result = drfc.run(*drfc.upload_args("0"), *switches, "-f", "--bandwidth-limit", "0", command="dr-upload-model")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--bandwidth-limit: '0' must be more than 0 bytes per second." in single_error_line(result.stderr)


def test_dr_upload_car_zip_passes_the_rate_on(drfc: DrfcSetup) -> None:
    """dr-upload-car-zip takes the option as drtransfer car-zip does (the archive's upload is paced)."""
    result = drfc.run(*drfc.upload_args("0"), "-f", "--bandwidth-limit", "0KB/s", command="dr-upload-car-zip")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--bandwidth-limit: '0KB/s' must be more than 0 bytes per second." in single_error_line(result.stderr)
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}
