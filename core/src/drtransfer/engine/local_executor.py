"""The built-in :class:`~drtransfer.engine.executor.Executor`: P worker processes x ``worker_threads``
threads on this machine (``concurrency`` transfers, the others for small requests), or as many threads in
this process with ``processes=0``.

Both shapes run the same :func:`serve` loop: threads take tasks from an in-process inbox and emit reports.
Each worker process has pipes of its own (tasks in, reports out) and nothing else shared with its
siblings but a lock-free cancel flag: a worker killed while it holds a lock (a shared queue's read lock, a
pipe's write lock) can then block nobody, and the parent knows which tasks it had (they are reported lost,
the others keep running). Processes are started with the configured multiprocessing context (``spawn``
and ``forkserver`` work: the target is an importable function and its arguments are plain data); they
ignore SIGINT, the parent decides when to stop them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import queue
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine.executor import Executor, ExecutorChoice
from drtransfer.engine.messages import Report, Task, TaskFailed, UploadStarted, WorkersLost, WorkerStopped
from drtransfer.engine.runtime import Runtime
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.worker import run_task

STOP = None  # sentinel: one per thread
HEALTH_INTERVAL = 1.0  # seconds between looks for dead worker processes
STOP_TIMEOUT = 10.0  # seconds the workers get to stop before they are killed
LINGER = 0.002  # seconds a worker's report waits for others to share its message (BatchSender)


class SharedFlag:
    """A cancel flag shared with worker processes: one byte read without a lock (a multiprocessing
    Event takes a lock in ``is_set``, and a worker killed holding it would hang every other one)."""

    def __init__(self, context: Any) -> None:
        self._value = context.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)


def _limit_malloc_arenas() -> None:
    """Keep freed part buffers from lingering in glibc's per-thread arenas (peak RSS stays ~ buffers)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold = -3
        libc.mallopt(m_mmap_threshold, 256 * 1024)  # buffers above this go straight back to the OS


def serve(inbox: Any, emit: Callable[[Report], None], cancel: Any, runtime: Runtime, threads: int) -> None:
    """Run ``threads`` worker threads until each has seen a STOP sentinel or ``cancel`` is set."""

    def loop() -> None:
        while not cancel.is_set():
            try:
                task: Task | None = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if task is STOP:
                break
            run_task(runtime, task)
        emit(WorkerStopped(os.getpid()))

    workers = [threading.Thread(target=loop, name=f"drtransfer-worker-{n}", daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    runtime.close()


class BatchSender:
    """Sends a worker's reports to the parent in batches, from a thread of its own: it waits for a first
    report, lingers :data:`LINGER` seconds so that the reports of that moment (the task's last progress
    and its result, other threads' results) join it, and sends them as one message, in the order emitted.
    So one pickle, one pipe write and one wake-up of the parent serve several reports; the delay is far
    below what a task takes, and the parent keeps twice as many tasks in flight as there are threads."""

    def __init__(self, results: Any, linger: float = 0.0) -> None:
        self._results = results
        self._linger = linger
        self._ready = threading.Condition()
        self._pending: list[Report] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="drtransfer-reports", daemon=True)
        self._thread.start()

    def emit(self, report: Report) -> None:
        with self._ready:
            self._pending.append(report)
            if len(self._pending) == 1:
                self._ready.notify()

    def close(self) -> None:
        """Send what is left, then stop the sending thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(STOP_TIMEOUT)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return  # closed, and everything sent
            if self._linger and not self._closed:
                time.sleep(self._linger)
            with self._ready:
                batch, self._pending = self._pending, []
            self._send(batch)

    def _send(self, batch: list[Report]) -> None:
        try:
            self._results.send(batch)  # pickled whole before anything is written
        except OSError:
            return  # the parent is gone: nobody to tell
        except Exception:  # a report that cannot be pickled: the others still go, it ends as a failure
            for report in batch:
                try:
                    self._results.send([report])
                except OSError:
                    return
                except Exception as error:
                    task_id = getattr(report, "task_id", None)
                    if task_id is not None and ends_task(report):
                        failed = TaskFailed(task_id, f"Unexpected error: {type(error).__name__}: {error}.", True, 0)
                        with contextlib.suppress(OSError):
                            self._results.send([failed])


def worker_main(
    tasks: Any,
    results: Any,
    cancel: Any,
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    warm: bool = False,
) -> None:
    """Entry point of a worker process: ``tasks`` and ``results`` are its own ends of its two pipes.
    ``warm``: started before the plan is done, so build the clients now, while there is nothing to do."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which cancels us
    _limit_malloc_arenas()
    inbox: queue.Queue[Task | None] = queue.Queue()
    sender = BatchSender(results, LINGER)

    def pump() -> None:
        """Move tasks from the pipe to the inbox; the parent closing the pipe stops every thread."""
        while True:
            try:
                batch = tasks.recv()
            except (EOFError, OSError):
                break
            if batch is STOP:
                break
            for task in batch:
                inbox.put(task)
        for _ in range(settings.worker_threads):
            inbox.put(STOP)

    threading.Thread(target=pump, name="drtransfer-inbox", daemon=True).start()
    runtime = Runtime(endpoints, settings, sender.emit, cancel)
    if warm:
        runtime.warm()
    serve(inbox, sender.emit, cancel, runtime, settings.worker_threads)
    sender.close()  # the last reports (each thread's WorkerStopped) before the process ends


@dataclass
class WorkerProcess:
    """One worker process, the parent's ends of its pipes and the tasks it was given that did not end."""

    process: Any
    tasks: Any
    results: Any
    assigned: set[int] = field(default_factory=set)
    lost: bool = False
    outbox: list[Task] = field(default_factory=list)  # submitted, sent with the next flush
    readable: Callable[[], bool] | None = None  # has a message (or end of file) waiting in ``results``


def ends_task(report: Report) -> bool:
    """True for the one report that ends a task (the result or its failure)."""
    return getattr(report, "task_id", None) is not None and not isinstance(report, UploadStarted)


class PipeWatcher:
    """Which workers' report pipes can be read. One ``select.poll`` object kept for the run, where
    ``multiprocessing.connection.wait`` and ``Connection.poll`` build a selector on every call: the
    parent waits about once per task on small objects, and those selectors were a quarter of its CPU
    there. Without ``select.poll`` (Windows), multiprocessing's own wait."""

    def __init__(self) -> None:
        self._poller = select.poll() if hasattr(select, "poll") else None
        self._workers: dict[int, WorkerProcess] = {}

    def add(self, worker: WorkerProcess) -> None:
        fd = worker.results.fileno()
        self._workers[fd] = worker
        if self._poller is None:
            worker.readable = lambda: bool(worker.results.poll())
            return
        self._poller.register(fd, select.POLLIN)
        single = select.poll()  # one fd: a readiness check is one system call
        single.register(fd, select.POLLIN)
        worker.readable = lambda: bool(single.poll(0))

    def remove(self, worker: WorkerProcess) -> None:
        for fd, known in list(self._workers.items()):
            if known is worker:
                del self._workers[fd]
                if self._poller is not None:
                    self._poller.unregister(fd)

    def ready(self, timeout: float) -> list[WorkerProcess]:
        """The workers whose pipe has something to read (or hung up), waiting up to ``timeout`` seconds."""
        live = [w for w in self._workers.values() if not w.lost]
        if self._poller is None:
            by_pipe = {w.results: w for w in live}
            return [by_pipe[r] for r in multiprocessing.connection.wait(list(by_pipe), timeout)]
        if len(live) < len(self._workers):
            for worker in [w for w in self._workers.values() if w.lost]:
                self.remove(worker)
        events = self._poller.poll(max(0, int(timeout * 1000 + 0.999)))
        return [self._workers[fd] for fd, _ in events if fd in self._workers]


class LocalExecutor:
    """Worker processes (or threads) on this machine; each task goes to the process with the fewest;
    dead processes are replaced and only their tasks are reported lost."""

    def __init__(self) -> None:
        self.settings = EngineSettings()
        self.endpoints: dict[str, Endpoint] = {}
        self.workers: list[WorkerProcess] = []
        self.threads: list[threading.Thread] = []
        self.inbox: Any = None  # processes=0: the in-process task queue
        self.results: queue.Queue[Report] = queue.Queue()  # processes=0: what the threads report
        self.arrived: deque[Report] = deque()  # reports read from the pipes (only this thread reads them)
        self.cancel_event: Any = None
        self.watcher = PipeWatcher()
        self.started = False
        self._early = False  # started by start_early and not yet taken by start
        self._warm = False
        self._last_health = time.monotonic()

    def start_early(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings) -> None:
        """Start the worker processes now, while the parent still inspects and plans: they build their
        clients meanwhile, on a core the parent leaves idle, and :meth:`start` takes them as they are
        when its endpoints are among ``endpoints`` and its settings are ``settings``. Call
        :meth:`release_early` when the run is over: it stops them if the engine never ran."""
        if self.started or settings.processes == 0:
            return
        self._launch(endpoints, settings, warm=True)
        self._early = True

    def release_early(self) -> None:
        """Stop workers that :meth:`start_early` started and no :meth:`start` took (nothing to transfer,
        the user declined, a check failed)."""
        if self._early:
            self._early = False
            self.stop(cancel=True)

    def start(
        self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, placement: Mapping[int, str] | None = None
    ) -> None:
        del placement  # one machine: every task runs here
        if self._early:
            self._early = False
            wanted = all(self.endpoints.get(name) == endpoint for name, endpoint in endpoints.items())
            if wanted and settings == self.settings:
                return
            self.stop(cancel=True)  # started for other endpoints or settings: start again
            self.workers.clear()
            self.watcher = PipeWatcher()
        self._launch(endpoints, settings, warm=False)

    def _launch(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, *, warm: bool) -> None:
        self.settings = settings
        self.endpoints = dict(endpoints)
        self._last_health = time.monotonic()
        self.started = True
        self._warm = warm
        if settings.processes == 0:
            self.inbox = queue.Queue()
            self.cancel_event = threading.Event()
            runtime = Runtime(self.endpoints, settings, self.results.put, self.cancel_event)
            thread = threading.Thread(
                target=serve,
                args=(self.inbox, self.results.put, self.cancel_event, runtime, settings.worker_threads),
                name="drtransfer-pool",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
            return
        self.context = multiprocessing.get_context(settings.start_method)
        self.cancel_event = SharedFlag(self.context)
        for _ in range(settings.processes):
            self._spawn()

    def _spawn(self) -> None:
        task_reader, task_writer = self.context.Pipe(duplex=False)
        result_reader, result_writer = self.context.Pipe(duplex=False)
        process = self.context.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(task_reader, result_writer, self.cancel_event, self.endpoints, self.settings, self._warm),
            name="drtransfer-worker",
            daemon=True,
        )
        process.start()
        task_reader.close()  # the child's ends: closed here, so a dead child reads as end-of-file
        result_writer.close()
        worker = WorkerProcess(process, task_writer, result_reader)
        self.workers.append(worker)
        self.watcher.add(worker)

    def submit(self, task: Task) -> None:
        if self.inbox is not None:
            self.inbox.put(task)
            return
        worker = min([w for w in self.workers if not w.lost] or self.workers, key=lambda w: len(w.assigned))
        worker.assigned.add(task.task_id)
        worker.outbox.append(task)

    def flush(self) -> None:
        """Send each worker the tasks submitted since the last flush, as one message: a dispatch round's
        tasks cost one pickle and one pipe write per worker, not one per task."""
        for worker in self.workers:
            if not worker.outbox:
                continue
            batch, worker.outbox = worker.outbox, []
            if worker.lost:
                continue  # the health check reports its tasks lost
            try:
                worker.tasks.send(batch)
            except OSError:  # it died: the health check reports its tasks lost
                worker.lost = True

    def reports(self, timeout: float) -> Iterator[Report]:
        if self.workers:
            self.flush()
            self._read_pipes(timeout)
            timeout = 0
        report = self._get(timeout)
        while report is not None:
            yield report
            report = self._get(0)
        now = time.monotonic()
        if now - self._last_health > HEALTH_INTERVAL:
            self._last_health = now
            lost = self._replace_dead()
            if lost:
                yield WorkersLost(len(lost), tuple(sorted(task for w in lost for task in w.assigned)))

    def _read_pipes(self, timeout: float) -> None:
        """Move every report waiting in a worker's pipe to :attr:`results` (waits up to ``timeout``)."""
        for worker in self.watcher.ready(timeout):
            self._drain(worker)

    def _drain(self, worker: WorkerProcess) -> None:
        while not worker.lost:
            try:
                if worker.readable is None or not worker.readable():
                    return
                batch: list[Report] = worker.results.recv()
            except Exception:  # end of file, or half a message from a killed process
                worker.lost = True
                return
            for report in batch:
                if ends_task(report):
                    worker.assigned.discard(report.task_id)  # type: ignore[union-attr]
            self.arrived.extend(batch)

    def _get(self, timeout: float) -> Report | None:
        if self.arrived:
            return self.arrived.popleft()
        try:
            return self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
        except queue.Empty:
            return None

    def _replace_dead(self) -> list[WorkerProcess]:
        """Restart worker processes that died (killed, out of memory); the ones replaced."""
        dead = []
        for worker in list(self.workers):
            if worker.process.is_alive() and not worker.lost:
                continue
            self._drain(worker)  # what it sent before it died still counts
            dead.append(worker)
            self.workers.remove(worker)
            self.watcher.remove(worker)
            self._close(worker)
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(5)
            self._spawn()
        return dead

    def _close(self, worker: WorkerProcess) -> None:
        for end in (worker.tasks, worker.results):
            with contextlib.suppress(OSError):
                end.close()

    def stop(self, *, cancel: bool) -> list[Report]:
        drained: list[Report] = []
        if not self.started:
            return drained
        if cancel:
            self.cancel_event.set()
        else:
            self.flush()
        if not cancel and self.inbox is not None:
            for _ in range(self.settings.worker_threads):
                self.inbox.put(STOP)
        for worker in self.workers:  # its threads stop once their task is done
            with contextlib.suppress(OSError):
                if not cancel:
                    # A STOP, not only the end of file: a forked worker inherits the other workers' write
                    # ends of their task pipes, so closing ours alone never ends its pipe.
                    worker.tasks.send(STOP)
                worker.tasks.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and (
            any(w.process.is_alive() for w in self.workers) or any(t.is_alive() for t in self.threads)
        ):
            drained.extend(self.reports_now(0.05))
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(5)
            self._drain(worker)
        drained.extend(self.reports_now(0))
        for worker in self.workers:
            self._close(worker)
        return drained

    def reports_now(self, timeout: float) -> list[Report]:
        """What arrived within ``timeout`` (no health check)."""
        if self.workers:
            self.flush()
            self._read_pipes(timeout)
            timeout = 0
        out = []
        while (report := self._get(timeout)) is not None:
            out.append(report)
            timeout = 0
        return out


def local_executor(choice: ExecutorChoice, settings: EngineSettings) -> tuple[Executor, EngineSettings]:
    """The ``local`` executor's factory (``--executor local``, the default); a cluster address (a
    ``RAY_ADDRESS`` left in the environment) means nothing to it."""
    del choice
    return LocalExecutor(), settings


__all__ = ["BatchSender", "LocalExecutor", "PipeWatcher", "SharedFlag", "local_executor", "serve", "worker_main"]
