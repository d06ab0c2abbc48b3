"""Tasks and reports cross the worker pipes in batches (issue 17, item 4): a dispatch round's tasks go to
each worker process as one message, and a worker's reports emitted while another is being sent go back as
one message; nothing is lost, nothing reordered, and the in-flight bound still holds. Beside it, the
per-object Python cut with it: the lean path's proxy check is made once per endpoint."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine.lean import LeanPath
from drtransfer.engine.local_executor import BatchSender, LocalExecutor, PipeWatcher, WorkerProcess
from drtransfer.engine.messages import OpDone, Progress, Report, Task, TaskFailed
from drtransfer.engine.runtime import Runtime
from drtransfer.engine.scheduler import run
from drtransfer.engine.settings import EngineSettings
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ModelPlan
from tests.engine.engine_helpers import assert_copied, base_settings, copy_plan, put_single, random_bytes


class _Pipe:
    """A pipe end that records every message; its first send waits until ``release`` is set."""

    def __init__(self) -> None:
        self.messages: list[list[Report]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: list[Report]) -> None:
        if not self.messages and not self.entered.is_set():
            self.entered.set()
            self.release.wait(10)
        self.messages.append(list(message))


def test_reports_emitted_while_one_is_sent_go_in_one_message_in_order() -> None:
    pipe = _Pipe()
    sender = BatchSender(pipe)
    sender.emit(Progress(0, 0, 1))
    assert pipe.entered.wait(10)  # the sender is sending it: what is emitted now waits for the next message
    others = [Progress(0, n, n) for n in range(1, 9)]
    for report in others:
        sender.emit(report)  # returns at once
    pipe.release.set()
    sender.close()

    assert pipe.messages == [[Progress(0, 0, 1)], others]


def test_reports_of_one_moment_share_a_message() -> None:
    """The sender lingers after a first report: a task's last progress and its result, emitted one after
    the other, and what other threads emit meanwhile, go as one message."""
    pipe = _Pipe()
    pipe.release.set()
    sender = BatchSender(pipe, linger=0.5)
    reports = [Progress(0, 1, 10), OpDone(7, "copied", 10, "stream"), Progress(0, 2, 5), OpDone(8, "put", 5, "put")]
    for report in reports:
        sender.emit(report)
    sender.close()

    assert pipe.messages == [reports]


def test_concurrent_reports_all_arrive_in_each_threads_order() -> None:
    pipe = _Pipe()
    pipe.release.set()
    sender = BatchSender(pipe)

    def emit_many(thread: int) -> None:
        for n in range(200):
            sender.emit(Progress(thread, n, 1))

    threads = [threading.Thread(target=emit_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sender.close()

    received = [report for message in pipe.messages for report in message]
    assert len(received) == 8 * 200
    for t in range(8):
        assert [r.op_index for r in received if isinstance(r, Progress) and r.model == t] == list(range(200))


class _CountingExecutor(LocalExecutor):
    """Counts the messages and the tasks sent down the worker processes' task pipes."""

    def __init__(self) -> None:
        super().__init__()
        self.messages = 0
        self.tasks_sent = 0
        self.largest = 0  # tasks in the largest message
        self.most_inflight = 0

    def submit(self, task: Task) -> None:
        super().submit(task)
        self.most_inflight = max(self.most_inflight, sum(len(w.assigned) for w in self.workers))

    def flush(self) -> None:
        for worker in self.workers:
            if worker.outbox and not worker.lost:
                self.messages += 1
                self.tasks_sent += len(worker.outbox)
                self.largest = max(self.largest, len(worker.outbox))
        super().flush()


def _small_copies(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str, count: int, size: int
) -> tuple[dict[str, bytes], ModelPlan, dict[str, Endpoint]]:
    """``count`` small source objects (``size`` bytes and up) and the plan that copies them to ``t/``."""
    data = {f"metrics/eval-{n:03d}.json": random_bytes(size + n) for n in range(count)}
    for key, body in data.items():
        put_single(local_s3.client(), local_bucket, key, body)
    plan = copy_plan("m", local_s3, "src", local_bucket, list(data), "dst", upload_bucket, "t/")
    return data, plan, {"src": local_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}


def test_small_copies_go_to_the_workers_in_batches(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    data, plan, endpoints = _small_copies(local_s3, upload_s3, local_bucket, upload_bucket, 60, 1024)
    settings = base_settings(2, "forkserver", concurrency=4)
    executor = _CountingExecutor()

    [result] = run([plan], endpoints, settings, [], executor)

    assert result.status == "ok", result.error
    assert_copied(upload_s3, upload_bucket, "t/", data)
    # the prepare, 60 copies and the audit: each task sent once; the first round of copies fills the
    # in-flight bound (2 x the threads of both workers) at once, and each worker gets its share in one message
    assert executor.tasks_sent == 62
    assert executor.largest == settings.in_flight // settings.processes
    assert executor.messages < executor.tasks_sent
    assert executor.most_inflight <= settings.in_flight  # the in-flight bound holds per batch too


class _ReportCounter(LocalExecutor):
    """Keeps every report the scheduler reads."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Report] = []

    def reports(self, timeout: float) -> Iterator[Report]:
        for report in super().reports(timeout):
            self.seen.append(report)
            yield report


class _Bytes:
    def __init__(self) -> None:
        self.moved = 0

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        self.moved += delta


def test_a_small_copy_is_one_report_that_carries_its_bytes(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    """A copy done in one task sends its last bytes with its result, not as a Progress of their own
    (on 2,000 small objects that was half of the parent's reports); subscribers still get every byte."""
    data, plan, endpoints = _small_copies(local_s3, upload_s3, local_bucket, upload_bucket, 20, 2048)
    executor, counted = _ReportCounter(), _Bytes()

    [result] = run([plan], endpoints, base_settings(1), [counted], executor)

    assert result.status == "ok", result.error
    assert_copied(upload_s3, upload_bucket, "t/", data)
    done = [r for r in executor.seen if isinstance(r, OpDone)]
    assert sorted(r.progress for r in done) == sorted(len(body) for body in data.values())
    assert not [r for r in executor.seen if isinstance(r, Progress)]
    assert counted.moved == sum(len(body) for body in data.values())


def test_the_lean_path_is_decided_once_per_endpoint_and_still_avoids_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy settings are read once per endpoint (they scan the whole environment, which cost more
    than a small copy's signing); an endpoint behind a proxy or without static credentials still goes
    through botocore, and one disabled after an unsupported answer too."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    keys = Credentials("test-access", "test-secret")
    endpoints = {
        "direct": Endpoint(name="direct", url="http://127.0.0.1:9000", region="us-east-1", credentials=keys),
        "proxied": Endpoint(name="proxied", url="http://10.1.2.3:9000", region="us-east-1", credentials=keys),
        "no-keys": Endpoint(name="no-keys", url="http://127.0.0.1:9001", region="us-east-1", credentials=None),
    }
    lean = LeanPath(Runtime(endpoints, EngineSettings(), lambda report: None, threading.Event()))

    assert lean.usable("direct")
    assert not lean.usable("proxied")
    assert not lean.usable("direct", "proxied")
    assert not lean.usable("no-keys")
    monkeypatch.delenv("HTTP_PROXY")  # read once: a run's workers keep their first answer
    assert not lean.usable("proxied")
    lean.disabled.add("direct")
    assert not lean.usable("direct")


def test_a_report_that_cannot_be_pickled_ends_its_task_as_failed_and_the_others_still_go() -> None:
    """Pickling happens before a byte is written: the batch is sent again report by report, the bad one
    replaced by its task's failure, so no task waits forever for its report and no sender stays stuck."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    sender = BatchSender(writer)
    bad = TaskFailed(2, lambda: None, retryable=True, rewind=0)  # type: ignore[arg-type]

    sender.emit(OpDone(1, "copied", 3, "stream"))
    sender.emit(bad)
    sender.emit(OpDone(3, "copied", 4, "stream"))

    received: list[Report] = []
    while len(received) < 3 and reader.poll(5):  # a stuck sender sends nothing more
        received += reader.recv()
    assert len(received) == 3
    assert received[0] == OpDone(1, "copied", 3, "stream")
    assert isinstance(received[1], TaskFailed) and received[1].task_id == 2
    assert received[1].error.startswith("Unexpected error:") and received[1].retryable
    assert received[2] == OpDone(3, "copied", 4, "stream")


def test_pipe_watcher_names_the_workers_with_reports_and_those_whose_pipe_ended() -> None:
    """The parent's one poll object for the run (not a selector per wait) finds each worker's waiting
    message and a pipe whose worker is gone (end of file: the worker is then marked lost)."""
    ends = [multiprocessing.Pipe(duplex=False) for _ in range(2)]
    workers = [WorkerProcess(None, None, reader) for reader, _ in ends]
    watcher = PipeWatcher()
    for worker in workers:
        watcher.add(worker)
    assert watcher.ready(0) == []
    assert not any(w.readable() for w in workers if w.readable)

    ends[1][1].send([Progress(0, 0, 1)])
    assert watcher.ready(1) == [workers[1]]
    assert workers[1].readable is not None and workers[1].readable()
    assert workers[1].results.recv() == [Progress(0, 0, 1)]
    assert watcher.ready(0) == []

    ends[0][1].close()  # the worker died: its pipe reads as ended
    assert watcher.ready(1) == [workers[0]]
    workers[0].lost = True
    watcher.remove(workers[0])
    assert watcher.ready(0) == []
