"""A worker process killed with SIGKILL in the middle of a transfer: the run ends (the lost worker's
tasks are retried on its replacement), no multipart upload is left, and the bytes are exact.

Before each worker process had pipes of its own, the killed process could die holding the shared task
queue's read lock (its idle threads wait on the queue holding it), and its replacement never got a task.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine import MiB
from drtransfer.engine.local_executor import LocalExecutor
from drtransfer.engine.scheduler import run
from drtransfer.engine.settings import EngineSettings
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelResult
from tests.conftest import list_multipart_uploads as list_uploads
from tests.engine.engine_helpers import Recorder, assert_copied, base_settings, copy_plan, put_multipart, random_bytes
from tests.infra.faultproxy import FaultProxy


class _KillWorker(Recorder):
    """SIGKILLs the executor's first worker process once bytes move."""

    def __init__(self, executor: LocalExecutor) -> None:
        super().__init__()
        self.executor = executor
        self.killed: int | None = None

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        super().on_progress(model_id, delta)
        if self.killed is None and sum(self.progress.values()) > 2 * MiB:
            self.killed = self.executor.workers[0].process.pid
            os.kill(self.killed, signal.SIGKILL)


def test_killed_worker_process_does_not_hang_the_run(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    data = {"big": random_bytes(15 * MiB)}
    put_multipart(local_s3.client(), local_bucket, "big", data["big"])
    with FaultProxy(local_s3.ports["s3"]) as proxy:
        proxy.bandwidth = 4 * MiB  # slow enough that the kill lands mid-transfer
        source = local_s3.endpoint("src")
        endpoints = {
            "src": Endpoint(name="src", url=proxy.url, region=source.region, credentials=source.credentials),
            "dst": upload_s3.endpoint("dst"),
        }
        plan = copy_plan("m", local_s3, "src", local_bucket, ["big"], "dst", upload_bucket, "t/")
        # One process: its idle threads hold the task queue's lock while they wait, so the old design
        # hung here every time.
        settings = base_settings(1, "forkserver", concurrency=4)
        executor = LocalExecutor()
        killer = _KillWorker(executor)
        results: list[ModelResult] = []
        runner = threading.Thread(
            target=lambda: results.extend(run([plan], endpoints, settings, [killer], executor)), daemon=True
        )
        runner.start()
        runner.join(120)
        assert not runner.is_alive(), "the run hung after its worker process was killed"

    assert killer.killed is not None
    [result] = results
    assert result.status == "ok", result.error  # the lost worker's parts were retried on its replacement
    assert_copied(upload_s3, upload_bucket, "t/", data)
    assert list_uploads(upload_s3, upload_bucket) == []


def test_a_finished_run_stops_its_worker_processes_instead_of_killing_them() -> None:
    """The STOP reaches each worker: a forked worker holds the other workers' write ends of their task
    pipes, so the parent closing its own ends never ended them, and every run waited for the stop timeout
    and then killed its workers (exit code -9)."""
    executor = LocalExecutor()
    executor.start({}, EngineSettings(processes=2, concurrency=2, start_method="fork"))
    processes = [worker.process for worker in executor.workers]

    executor.stop(cancel=False)

    assert [process.exitcode for process in processes] == [0, 0]
