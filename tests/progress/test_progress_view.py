"""The progress view on a pseudo-terminal 80 columns wide: the real ``drtransfer upload`` through a
bandwidth-capped proxy (so several frames are drawn), read back frame by frame.

A frame is what :class:`drtransfer_cli.progress.ProgressView` draws at once: after the first, it starts
with "cursor up N lines", and each of its lines starts with "erase line".
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelPlan, ObjectLocation, PutBytes
from drtransfer_cli.progress import ProgressView
from tests.infra.drfc import DrfcSetup, console_script, seed_drfc
from tests.infra.faultproxy import FaultProxy

COLUMNS, ROWS = 80, 30
# Run 2 is the largest and, with one thread (two tasks in flight), starts only when a file of run 0 or
# 1 is done: its own time is shorter than the batch's.
RUNS = (("0", "alpha"), ("1", "beta"), ("2", "gamma"))
SCALES = {"0": 0.02, "1": 0.02, "2": 0.05}
BANDWIDTH = 512 * 1024  # bytes/s per connection: the upload takes several seconds
DURATION = re.compile(r"\b(?:(\d+):)?(\d+):(\d\d)\b")


@pytest.fixture
def proxy(upload_s3: SeaweedServer) -> Iterator[FaultProxy]:
    with FaultProxy(upload_s3.ports["s3"]) as proxy:
        proxy.bandwidth = BANDWIDTH
        yield proxy


@pytest.fixture
def setup(
    proxy: FaultProxy,
    tmp_path: Path,
    local_s3: SeaweedServer,
    upload_s3: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
) -> DrfcSetup:
    """The three runs, uploading through the capped proxy."""
    return seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, RUNS, scale=SCALES, upload_url=proxy.url
    )


def open_terminal(columns: int = COLUMNS, rows: int = ROWS) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def read_all(master: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 240.0) -> str:
    """Everything written to the terminal until the process ended (or, without one, until it is quiet)."""
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.2 if process is None else timeout)
        if not ready:
            if process is None or process.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")


def upload_on_terminal(setup: DrfcSetup, *args: str) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """``drtransfer upload`` with its stderr on an 80-column terminal; the text the terminal got."""
    master, slave = open_terminal()
    env = setup.env(TERM="xterm")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    command = [console_script(), "upload", *setup.upload_args(), "-f", "--processes", "1", "--concurrency", "1", *args]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env) as run:
        os.close(slave)
        try:
            text = read_all(master, run)
            stdout, _ = run.communicate(timeout=240)
        finally:
            os.close(master)
    return subprocess.CompletedProcess(command, run.returncode, stdout, b""), text


def frames(text: str) -> list[list[str]]:
    """The frames of the view, each as its lines without escape sequences."""
    start = text.find("\x1b[2K")
    assert start >= 0, text
    out = []
    for chunk in re.split(r"\x1b\[\d+A\r", text[start:]):
        lines = re.findall(r"\x1b\[2K([^\n]*)\n", chunk)
        if lines:
            out.append([line.replace("\x1b[J", "") for line in lines])
    return out


def seconds(text: str) -> int:
    found = DURATION.findall(text)
    assert found, text
    hours, minutes, secs = found[-1]
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)


def bar_column(line: str) -> int:
    return min(line.index(c) for c in "█░" if c in line)


def test_the_view_of_a_real_upload_and_its_rerun(setup: DrfcSetup) -> None:
    done, text = upload_on_terminal(setup)
    assert done.returncode == 0, text
    before_view = text[: text.index("\x1b[2K")].splitlines()
    drawn = frames(text)
    assert len(drawn) >= 3  # the refresh thread redrew while bytes moved

    # "Ready to upload": each model's size and checkpoint, on lines that fit 80 columns.
    ready = before_view[before_view.index("Ready to upload 3 model(s):") :]
    assert all(len(line) < COLUMNS for line in ready), ready
    for run_id, prefix in RUNS:
        assert any(line.startswith(f"  run {run_id} ({prefix}): ") and " MiB, last: " in line for line in ready)

    labels = ["total", *(f"run {run_id} ({prefix})" for run_id, prefix in RUNS)]
    for frame in drawn:
        assert len(frame) == len(labels)
        assert all(line.startswith(f"{label} ") for line, label in zip(frame, labels, strict=True))  # total on top
        assert all(len(line) < COLUMNS for line in frame), frame
        assert len({bar_column(line) for line in frame}) == 1, frame  # padded labels: the bars line up
        for line in frame:
            assert "ETA" not in line or "/s " in line, line  # an ETA only beside a rate
    assert all(line.endswith("queued") for line in drawn[0][1:])  # before the first event
    assert "ETA" not in " ".join(drawn[0])

    final = drawn[-1]
    assert all(" 100% " in line for line in final), final
    assert all(line.endswith("done") for line in final), final
    # Run 2 started after the batch did: its own time is shorter than the batch's.
    assert seconds(final[3]) < seconds(final[0]), final

    # -v: the event log prints above the view, which stays whole.
    again, text = upload_on_terminal(setup, "-v")
    assert again.returncode == 0, text
    assert "\x1b[J[model_uploaded] run 2: " in text, text  # printed where the view was, then the view again
    assert all(len(frame) == len(labels) for frame in frames(text))
    final = frames(text)[-1]
    assert " 100% " in final[0] and final[0].endswith("done"), final  # the total reaches 100% on a re-run
    for line in final[1:]:
        assert " 100% " in line and line.endswith("already there"), final


def test_a_retry_with_delay_and_endpoint_says_what_it_waits_for() -> None:
    """The engine passes ``delay`` and ``endpoint`` to ``on_retry`` while it backs off; without them the
    line says "retrying"."""
    target = ObjectLocation("upload", "bucket", "exp-a-up/model/model_3.pb")
    waiting = ModelPlan("run-0", ObjectLocation("upload", "bucket", "exp-a-up/"), [PutBytes(target, b"x" * 4096)])
    plain = ModelPlan("run-1", ObjectLocation("upload", "bucket", "exp-b-up/"), [PutBytes(target, b"y" * 4096)])
    master, slave = open_terminal()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        view = ProgressView({"run-0": "exp-a", "run-1": "exp-b"}, terminal, refresh=30.0)
        view.on_start([waiting, plain])
        view.on_progress("run-0", 1024)
        endpoint = "http://127.0.0.1:9000"
        view.on_retry("run-0", waiting.operations[0], 7, "connection refused", delay=4.0, endpoint=endpoint)
        view.on_retry("run-1", plain.operations[0], 2, "connection refused")
        view.close()
        text = read_all(master)
    os.close(master)
    final = frames(text)[-1]
    assert final[1] == f"exp-a waiting for {endpoint}: connection refused, retry 7 in 4 s"
    assert final[2].startswith("exp-b   0% ") and final[2].endswith(" retrying"), final
    assert all(len(line) < COLUMNS for line in final), final

    # A label that leaves too little room: the error is shortened, the endpoint and countdown stay.
    long_label = {"run-0": "experiment with a long name (exp-a)", "run-1": "run 1 (exp-b)"}
    master, slave = open_terminal()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        view = ProgressView(long_label, terminal, refresh=30.0)
        view.on_start([waiting, plain])
        view.on_retry("run-0", waiting.operations[0], 7, "connection refused", delay=4.0, endpoint=endpoint)
        view.close()
        text = read_all(master)
    os.close(master)
    line = frames(text)[-1][1]
    assert len(line) < COLUMNS and f"waiting for {endpoint}: conn" in line and line.endswith(", retry 7 in 4 s")


def test_long_labels_are_cut_where_they_differ() -> None:
    """Experiment names too long for the label column at 80 columns stay told apart."""
    names = {f"run-{i}": f"experiment-number-{i}-with-a-long-name" for i in range(3)}
    target = ObjectLocation("upload", "bucket", "key")
    plans = [ModelPlan(key, ObjectLocation("upload", "bucket", f"{key}/"), [PutBytes(target, b"x")]) for key in names]
    master, slave = open_terminal()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        view = ProgressView(names, terminal, refresh=30.0)
        view.on_start(plans)
        view.close()
        text = read_all(master)
    os.close(master)
    final = frames(text)[-1]
    shown = [line[: bar_column(line)].split("  ")[0] for line in final[1:]]
    assert len(set(shown)) == 3 and all(len(line) < COLUMNS for line in final), final
    assert [label for label in shown if "-0-" in label] and [label for label in shown if "-2-" in label], shown
