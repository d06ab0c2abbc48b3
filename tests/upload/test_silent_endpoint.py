"""Issue 14 point 3: an endpoint that accepts connections and never answers is one sentence and exit 2
within the pre-flight timeouts, for the upload endpoint (target checks) and the local endpoint (model
inspection), before anything is written."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import list_tree
from tests.upload.conftest import Drfc
from tests.upload.test_bad_input import single_error_line

# The variable of each endpoint's URL in the files `drfc` writes (DR_CLOUD=remote).
URL_VARIABLES = {"upload": "DR_UPLOAD_S3_ENDPOINT_URL", "local": "DR_REMOTE_MINIO_URL"}


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listener that the kernel completes connections for but that never reads or answers (it never
    calls accept); closed after the test."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.mark.parametrize("endpoint", ["upload", "local"])
def test_a_silent_endpoint_is_one_sentence_and_exit_2_within_seconds(
    drfc: Drfc, silent_url: str, endpoint: str
) -> None:
    variable = URL_VARIABLES[endpoint]
    server = drfc.upload if endpoint == "upload" else drfc.local
    system = drfc.files.system_env
    system.write_text(system.read_text().replace(f"{variable}={server.url}\n", f"{variable}={silent_url}\n"))
    assert silent_url in system.read_text()
    run_file = drfc.files.run_files[0]
    run_text = run_file.read_text()
    source_before = list_tree(drfc.local, drfc.local_bucket)

    started = time.monotonic()
    result = drfc.run("upload", *drfc.upload_args("0"), "-f", "--processes", "0")
    seconds = time.monotonic() - started

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert seconds < 30, f"the first answer took {seconds:.1f} s"
    line = single_error_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert line.endswith(".")
    assert f"The {endpoint} endpoint {silent_url} accepted the connection but did not answer within 5 s" in line
    assert variable in line
    assert list_tree(drfc.upload, drfc.upload_bucket) == {}
    assert list_tree(drfc.local, drfc.local_bucket) == source_before
    assert run_file.read_text() == run_text
