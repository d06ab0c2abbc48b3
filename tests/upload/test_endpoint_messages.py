"""Issue 14 point 7: messages that name what is wrong and the fix that works, through the real commands:
https against an http server, a missing profile in the credentials file actually used, ``/`` as the
upload prefix, and an activated shell whose exported ``DR_UPLOAD_S3_PREFIX`` went stale after ``-1``
(``--upload-prefix`` sets the target prefix alone)."""

from __future__ import annotations

import pytest

from tests.conftest import list_tree
from tests.upload.conftest import Drfc
from tests.upload.test_bad_input import single_error_line
from tests.upload.test_upload_command import assert_uploaded

# The variable of each endpoint's URL and profile in the files `drfc` writes (DR_CLOUD=remote).
URL_VARIABLES = {"upload": "DR_UPLOAD_S3_ENDPOINT_URL", "local": "DR_REMOTE_MINIO_URL"}
PROFILE_VARIABLES = {"upload": ("DR_UPLOAD_S3_PROFILE", "drt-upload"), "local": ("DR_LOCAL_S3_PROFILE", "drt-local")}
COMMANDS = [("drtransfer", ["upload"]), ("dr-upload-model", [])]
STALE_WARNING = "DR_UPLOAD_S3_PREFIX is exported"


def refused(drfc: Drfc, *args: str, env: dict[str, str] | None = None) -> str:
    """Run an upload that must be refused before anything is written; its one error line."""
    source_before = list_tree(drfc.local, drfc.local_bucket)
    result = drfc.run("upload", *args, "-f", "--processes", "0", env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}
    assert list_tree(drfc.local, drfc.local_bucket) == source_before
    line = single_error_line(result.stderr)
    assert line.endswith("."), line
    return line


@pytest.mark.parametrize("endpoint", ["upload", "local"])
def test_https_against_an_http_server_names_the_http_url_and_its_variable(drfc: Drfc, endpoint: str) -> None:
    variable = URL_VARIABLES[endpoint]
    http_url = (drfc.upload if endpoint == "upload" else drfc.local).url
    https_url = http_url.replace("http://", "https://", 1)
    system = drfc.files.system_env
    system.write_text(system.read_text().replace(f"{variable}={http_url}\n", f"{variable}={https_url}\n"))

    line = refused(drfc, *drfc.upload_args("0"))

    assert line.endswith(
        f": error: The server at {https_url} speaks http, not https: use {http_url} in {variable}."
    ), line


@pytest.mark.parametrize("endpoint", ["upload", "local"])
def test_a_missing_profile_names_the_credentials_and_config_files_used(drfc: Drfc, endpoint: str) -> None:
    variable, profile = PROFILE_VARIABLES[endpoint]
    system = drfc.files.system_env
    system.write_text(system.read_text().replace(f"{variable}={profile}\n", f"{variable}=drt-missing\n"))
    credentials = drfc.files.environ["AWS_SHARED_CREDENTIALS_FILE"]
    config = drfc.files.environ["AWS_CONFIG_FILE"]

    line = refused(drfc, *drfc.upload_args("0"))

    assert f"The {endpoint} AWS profile 'drt-missing' does not exist" in line
    assert f"{credentials} (AWS_SHARED_CREDENTIALS_FILE)" in line
    assert f"{config} (AWS_CONFIG_FILE)" in line
    assert "~/.aws" not in line
    assert variable in line


def test_slash_as_upload_prefix_says_why_the_bucket_root_is_refused(drfc: Drfc) -> None:
    run_file = drfc.files.run_files[0]
    run_file.write_text(run_file.read_text().replace("DR_UPLOAD_S3_PREFIX=alpha-up\n", "DR_UPLOAD_S3_PREFIX=/\n"))

    line = refused(drfc, *drfc.upload_args("0"))

    assert "No upload prefix defined" not in line
    assert f"DR_UPLOAD_S3_PREFIX=/ for run 0 ({run_file}) would upload into the root of bucket " in line
    assert "where -w and the commit objects would act on the whole bucket" in line
    assert "give the model a prefix of its own" in line


@pytest.mark.parametrize(("command", "args"), COMMANDS)
def test_upload_prefix_sets_only_the_target_prefix(drfc: Drfc, command: str, args: list[str]) -> None:
    run_file = drfc.files.run_files[0]
    before = run_file.read_bytes()

    done = drfc.run(*args, *drfc.upload_args("0"), "--upload-prefix", "/elsewhere/", "-f", "--processes", "0",
                    command=command)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert_uploaded(drfc, "alpha", "elsewhere", 11)  # the source and its metrics are the run's own
    assert list_tree(drfc.upload, drfc.upload_bucket, "alpha-up/") == {}
    assert run_file.read_bytes() == before


def test_upload_prefix_with_p_takes_the_source_from_p_and_the_target_from_upload_prefix(drfc: Drfc) -> None:
    done = drfc.run("upload", *drfc.upload_args("0"), "-p", "beta", "--upload-prefix", "beta-copy", "-f",
                    "--processes", "0")  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert_uploaded(drfc, "beta", "beta-copy", 11)
    assert list_tree(drfc.upload, drfc.upload_bucket, "beta/") == {}


@pytest.mark.parametrize(
    ("prefix", "extra", "fragment"),
    [
        ("elsewhere", ["-1"], "--upload-prefix elsewhere and -1 both choose the upload prefix; drop one of them."),
        ("/", [], "--upload-prefix / is the bucket root, where -w and the commit objects would act on the whole"),
        ("alpha", ["-L"], "(s3://{local}/alpha): --upload-prefix alpha is the source prefix; give another"),
    ],
    ids=["with-increment", "slash", "onto-the-source"],
)
def test_upload_prefix_refusals(drfc: Drfc, prefix: str, extra: list[str], fragment: str) -> None:
    fragment = fragment.format(local=drfc.local_bucket)
    run_file = drfc.files.run_files[0]
    before = run_file.read_bytes()

    line = refused(drfc, *drfc.upload_args("0"), "--upload-prefix", prefix, *extra)

    assert fragment in line, line
    assert run_file.read_bytes() == before


def test_an_activated_shell_after_minus_1_is_told_the_option_that_exists(drfc: Drfc) -> None:
    run_file = drfc.files.run_files[0]
    # The shell was activated with this run file while it held alpha-up (as tests/config does it).
    shell = drfc.env(
        DR_DIR=str(drfc.files.system_env.parent), DR_CONFIG=str(run_file), DR_UPLOAD_S3_PREFIX="alpha-up"
    )

    first = drfc.run("upload", "-1", "-f", "--processes", "0", env=shell)
    assert first.returncode == 0, first.stderr
    assert STALE_WARNING not in first.stderr
    assert "DR_UPLOAD_S3_PREFIX=alpha-up-1\n" in run_file.read_text()

    # The shell still exports alpha-up: the file wins, and the warning names what works.
    later = drfc.run("upload", "-d", env=shell)
    assert later.returncode == 0, later.stderr
    (warning,) = [line for line in later.stderr.splitlines() if STALE_WARNING in line]
    assert warning == (
        f"DR_UPLOAD_S3_PREFIX is exported as alpha-up, but {run_file} (DR_CONFIG) sets alpha-up-1; using "
        f"alpha-up-1, as DRfC does; run dr-update-env to refresh this shell, or pass --upload-prefix alpha-up "
        f"to upload there."
    )
    assert f"s3://{drfc.upload_bucket}/alpha-up-1/" in later.stdout

    # What the warning says works, without the warning.
    there = drfc.run("upload", "--upload-prefix", "alpha-up", "-f", "--processes", "0", env=shell)
    assert there.returncode == 0, there.stderr
    assert STALE_WARNING not in there.stderr
    assert_uploaded(drfc, "alpha", "alpha-up", 11)
    assert "DR_UPLOAD_S3_PREFIX=alpha-up-1\n" in run_file.read_text()
