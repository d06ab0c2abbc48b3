"""An outage of a target (a real SeaweedFS killed and restarted on the same port): the engine waits for it
up to ``stall_deadline`` without progress, reports every wait (``delay``, ``endpoint``), fails only the
models it hits with one sentence, and wakes every waiting operation at the first success once it is back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from drtransfer.endpoints import make_s3_client
from drtransfer.engine import MiB, run_transfer
from drtransfer.engine.outage import WAIT_CODES
from drtransfer.errors import ConfigError
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelResult, Operation
from tests.conftest import list_multipart_uploads as list_uploads
from tests.engine.engine_helpers import Recorder, assert_copied, base_settings, copy_plan, random_bytes
from tests.engine.test_faults import proxied, slow_checkpoints
from tests.infra.faultproxy import FaultProxy

REASONS = {"connection refused", "connection lost", "read timeout", "connect timeout", "cannot connect", *WAIT_CODES}
REASONS |= {f"HTTP {status}" for status in (500, 502, 503, 504)}  # a server still starting up


@pytest.fixture
def source_proxy(local_s3: SeaweedServer) -> Iterator[FaultProxy]:
    with FaultProxy(local_s3.ports["s3"]) as proxy:
        yield proxy


class Outage(Recorder):
    """Kills ``server`` once ``after`` bytes moved; restarts it after ``retries`` reported retries (if set)."""

    def __init__(self, server: SeaweedServer, after: int, restart_after: int | None = None) -> None:
        super().__init__()
        self.server, self.after, self.restart_after = server, after, restart_after
        self.killed = threading.Event()
        self.back = threading.Event()
        self.kwargs: list[dict[str, Any]] = []
        self.ops: list[str] = []

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        super().on_progress(model_id, delta)
        if not self.killed.is_set() and sum(self.progress.values()) > self.after:
            self.server.kill()
            self.killed.set()

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str, **kwargs: Any) -> None:
        super().on_retry(model_id, operation, attempt, error)
        self.kwargs.append(kwargs)
        self.ops.append(operation.target.key)
        if self.restart_after is not None and len(self.retries) >= self.restart_after and not self.back.is_set():
            self.server.start()  # back on the same port and data
            self.back.set()


def run_in_thread(*args: Any) -> tuple[threading.Thread, list[ModelResult]]:
    results: list[ModelResult] = []
    runner = threading.Thread(target=lambda: results.extend(run_transfer(*args)))
    runner.start()
    return runner, results


def test_target_down_past_the_deadline_fails_its_model_only(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    source_proxy: FaultProxy, tmp_path: Path,
) -> None:  # fmt: skip
    dead = SeaweedServer(data_dir=tmp_path / "dead").start()
    try:
        data = slow_checkpoints(local_s3, local_bucket, source_proxy, dead)
        endpoints = {
            "src": proxied(local_s3, source_proxy, "src"), "dead": dead.endpoint("dead"),
            "live": upload_s3.endpoint("live"),
        }  # fmt: skip
        plans = [
            copy_plan("hit", local_s3, "src", local_bucket, sorted(data), "dead", "target", "t/"),
            copy_plan("other", local_s3, "src", local_bucket, sorted(data), "live", upload_bucket, "o/"),
        ]
        outage = Outage(dead, after=3 * MiB)
        settings = base_settings(0, stall_deadline=3.0, abort_timeout=90.0)
        runner, results = run_in_thread(plans, endpoints, settings, [outage])
        assert outage.killed.wait(120)
        while runner.is_alive() and not any(r.status == "failed" for _, r in outage.operations):
            runner.join(0.1)
        dead.start()  # back while the engine still tries to abort its uploads
        runner.join(180)
        assert not runner.is_alive()

        hit, other = results
        assert hit.status == "failed"
        assert hit.error is not None
        assert hit.error.startswith(f"No progress for 3 s: dead endpoint {dead.url}: "), hit.error
        assert hit.error.endswith(".") and hit.error.count(". ") == 0, hit.error
        assert hit.error.removesuffix(".").rsplit(": ", 1)[1] in REASONS, hit.error
        assert other.status == "ok", other.error
        assert_copied(upload_s3, upload_bucket, "o/", data)
        assert list_uploads(dead, "target") == []
        # every wait was reported with its delay and the endpoint it waits for
        waits = [kw for (_, _, error), kw in zip(outage.retries, outage.kwargs, strict=True) if error in REASONS]
        assert waits and all(kw["endpoint"] == dead.url and kw["delay"] > 0 for kw in waits)
    finally:
        dead.stop()


def test_target_back_before_the_deadline_everything_succeeds(
    local_s3: SeaweedServer, local_bucket: str, source_proxy: FaultProxy, tmp_path: Path,
) -> None:  # fmt: skip
    target = SeaweedServer(data_dir=tmp_path / "target").start()
    try:
        data = slow_checkpoints(local_s3, local_bucket, source_proxy, target, count=2)
        small = {f"small-{n}": random_bytes(200_000) for n in range(30)}
        for key, body in small.items():
            local_s3.client().put_object(Bucket=local_bucket, Key=key, Body=body)
        data |= small
        endpoints = {"src": proxied(local_s3, source_proxy, "src"), "dst": target.endpoint("dst")}
        plan = copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", "target", "t/")
        outage = Outage(target, after=3 * MiB, restart_after=8)
        # backoff capped at 2 s: recovery is seen at the first retry after the restart
        settings = base_settings(0, concurrency=2, small_requests=2, stall_deadline=120.0, retry_max_delay=2.0)
        runner, results = run_in_thread([plan], endpoints, settings, [outage])
        runner.join(240)
        assert not runner.is_alive()

        [result] = results
        assert outage.back.is_set()
        assert result.status == "ok", result.error
        assert_copied(target, "target", "t/", data)
        assert list_uploads(target, "target") == []
        waits = [(error, kw) for (_, _, error), kw in zip(outage.retries, outage.kwargs, strict=True)]
        assert all(error in REASONS for error, _ in waits), waits
        assert all(kw["endpoint"] == target.url and 0 < kw["delay"] <= 2.0 for _, kw in waits), waits
        # Operations that had not started when the target died were held back, not sent one by one
        # against the dead server: only what was in flight (4 tasks at most with 2 threads) retried.
        retried = set(outage.ops)
        assert len(retried) <= settings.in_flight, sorted(retried)
    finally:
        target.stop()


def test_stall_deadline_is_tuned_by_drtransfer_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from drtransfer_cli.app import engine_settings

    monkeypatch.setenv("DRTRANSFER_ENGINE", "stall_deadline=30")
    assert engine_settings(None, None, None).stall_deadline == 30.0
    monkeypatch.setenv("DRTRANSFER_ENGINE", "stall_deadline=0")
    with pytest.raises(ConfigError, match=r"the stall deadline must be more than 0 seconds"):
        engine_settings(None, None, None)


def test_the_engine_client_leaves_a_dead_server_to_the_engine(tmp_path: Path) -> None:
    """A request to a killed server fails after one attempt (botocore's legacy retries made this minutes of
    silence per request), with the short reason the engine reports while it waits."""
    from drtransfer.engine import EngineSettings
    from drtransfer.engine.outage import outage_reason

    server = SeaweedServer(data_dir=tmp_path / "gone").start()
    endpoint = server.endpoint("gone")
    server.kill()
    settings = EngineSettings(processes=0, connect_timeout=2.0)
    client = make_s3_client(endpoint, settings.client_settings())
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda **kwargs: sent.append("sent"))
    with pytest.raises(botocore.exceptions.EndpointConnectionError) as caught:
        client.head_bucket(Bucket="b")
    assert outage_reason(caught.value, "") == "connection refused"
    assert len(sent) == 1
