"""A flaky network between the command and both servers (connections reset after some
bytes, latency, a stalled connection) and a throttling target (``503 SlowDown``), through the loopback
fault proxy. Every upload completes with every object verified; retries are reported with ``-v``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from drtransfer.locals3 import SeaweedServer
from tests.infra.faultproxy import Fault, FaultProxy
from tests.reliability.conftest import Setup, check_target_model, make_setup, no_uploads_left

MiB = 1024 * 1024
# 9 MiB of checkpoint data per run (a two-part multipart source) above a 6 MiB threshold: streamed as
# ranged GETs and UploadParts; the 4.4 MiB graph goes as one GET and one PUT.
SCALE = 0.2
STREAMING = "multipart_threshold=6291456"
RETRY_TOTAL = re.compile(r"^run \d \(\w+\): (\d+) retr(?:y|ies)$")


def proxied_setup(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    proxy_for: Callable[[SeaweedServer], FaultProxy],
) -> tuple[Setup, FaultProxy, FaultProxy]:  # fmt: skip
    source, target = proxy_for(local_s3), proxy_for(upload_s3)
    setup = make_setup(
        tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, local_url=source.url, upload_url=target.url,
        scale=SCALE, checkpoints=(1,),
    )  # fmt: skip
    return setup, source, target


def assert_all_verified(setup: Setup) -> None:
    for run_id, _prefix in setup.runs:
        state, _ = check_target_model(setup, run_id, 1)  # every object's bytes equal its source's
        assert state == "complete"
    no_uploads_left(setup.upload, setup.upload_bucket)


def reported_retries(stderr: str) -> list[int]:
    return [int(m.group(1)) for line in stderr.splitlines() if (m := RETRY_TOTAL.match(line))]


def test_resets_and_latency_on_both_sides(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    proxy_for: Callable[[SeaweedServer], FaultProxy],
) -> None:  # fmt: skip
    setup, source, target = proxied_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, proxy_for)
    source.latency = target.latency = 0.005
    source.reset_every, source.reset_after = 3, 256 * 1024  # every 3rd connection dies after 256 KiB
    target.reset_every, target.reset_after = 2, 1 * MiB  # the lean path keeps few connections: reset often

    done = setup.command(
        "upload", *setup.upload_args(), "-f", "-v", "--processes", "2", "--part-size", "5MB",
        DRTRANSFER_ENGINE=STREAMING,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert source.resets and target.resets, (source.resets, target.resets)
    assert_all_verified(setup)
    assert len(reported_retries(done.stderr)) == 3
    assert sum(reported_retries(done.stderr)) >= 1, done.stderr  # resets during the transfer were retried


def test_a_stalled_connection_is_timed_out_and_retried(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    proxy_for: Callable[[SeaweedServer], FaultProxy],
) -> None:  # fmt: skip
    setup, source, _target = proxied_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, proxy_for)
    # The graph's download stops after 64 KiB and would stay silent far longer than the command may take.
    source.add(Fault("stall", "down", "GET", "/beta/model/model_1.pb", after_bytes=64 * 1024, seconds=600))

    done = setup.command(
        "upload", *setup.upload_args(), "-f", "-v", "--processes", "1", DRTRANSFER_ENGINE="read_timeout=3"
    )

    assert done.returncode == 0, done.stderr
    assert source.fired == [f"stall down GET /{setup.local_bucket}/beta/model/model_1.pb"]
    retry = [line for line in done.stderr.splitlines() if "retry 2 of" in line and "model_1.pb" in line]
    assert len(retry) == 1 and retry[0].endswith(": read timeout"), done.stderr  # the engine's wait, its reason
    assert_all_verified(setup)


def test_slowdown_is_backed_off_and_every_retry_is_reported(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    proxy_for: Callable[[SeaweedServer], FaultProxy],
) -> None:  # fmt: skip
    setup, _source, target = proxied_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket, proxy_for)
    target.slowdown_every, target.slowdown_methods = 3, {"PUT"}  # every 3rd object or part upload: 503

    done = setup.command(
        "upload", *setup.upload_args(), "-f", "-v", "--processes", "2", "--part-size", "5MB",
        DRTRANSFER_ENGINE=STREAMING,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert target.slowdowns >= 5, target.slowdowns
    assert sum(reported_retries(done.stderr)) == target.slowdowns, done.stderr  # each one, once
    lines = [line for line in done.stderr.splitlines() if ": retry " in line]
    # retried by the S3 client first (up to client_max_attempts), then waited for by the engine
    assert len(lines) == target.slowdowns and all(
        line.endswith(("the S3 client sent it again after SlowDown.", ": SlowDown")) for line in lines
    ), lines
    assert_all_verified(setup)
