"""The built-in :class:`~drtransfer.engine.executor.Executor`: P worker processes x ``concurrency`` threads
on this machine, or ``concurrency`` threads in this process with ``processes=0``.

Both shapes run the same :func:`serve` loop: threads take tasks from one shared task queue and put
reports on one result queue. Processes are started with the configured multiprocessing context
(``spawn`` and ``forkserver`` work: the target is an importable function and its arguments are plain
data); they ignore SIGINT, the parent decides when to stop them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine.messages import Report, Task, WorkersLost, WorkerStopped
from drtransfer.engine.runtime import Runtime
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.worker import run_task

STOP = None  # sentinel: one per thread
HEALTH_INTERVAL = 1.0  # seconds between looks for dead worker processes
STOP_TIMEOUT = 10.0  # seconds the workers get to stop before they are killed


def _limit_malloc_arenas() -> None:
    """Keep freed part buffers from lingering in glibc's per-thread arenas (peak RSS stays ~ buffers)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold = -3
        libc.mallopt(m_mmap_threshold, 256 * 1024)  # buffers above this go straight back to the OS


def serve(task_queue: Any, result_queue: Any, cancel: Any, runtime: Runtime, threads: int) -> None:
    """Run ``threads`` worker threads until each has seen a STOP sentinel or ``cancel`` is set."""

    def loop() -> None:
        while not cancel.is_set():
            try:
                task: Task | None = task_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if task is STOP:
                break
            run_task(runtime, task)
        result_queue.put(WorkerStopped(os.getpid()))

    workers = [threading.Thread(target=loop, name=f"drtransfer-worker-{n}", daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    runtime.close()


def worker_main(
    task_queue: Any, result_queue: Any, cancel: Any, endpoints: Mapping[str, Endpoint], settings: EngineSettings
) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which cancels us
    _limit_malloc_arenas()
    runtime = Runtime(endpoints, settings, result_queue.put, cancel)
    try:
        serve(task_queue, result_queue, cancel, runtime, settings.concurrency)
    finally:
        if cancel.is_set():
            result_queue.cancel_join_thread()  # the parent may no longer read: do not hang on exit


class LocalExecutor:
    """Worker processes (or threads) fed through one task queue; dead processes are replaced."""

    def __init__(self) -> None:
        self.settings = EngineSettings()
        self.endpoints: dict[str, Endpoint] = {}
        self.processes: list[Any] = []
        self.threads: list[threading.Thread] = []
        self.tasks: Any = None
        self.results: Any = None
        self.cancel_event: Any = None
        self._last_health = time.monotonic()

    def start(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings) -> None:
        self.settings = settings
        self.endpoints = dict(endpoints)
        self._last_health = time.monotonic()
        if settings.processes == 0:
            self.tasks = queue.Queue()
            self.results = queue.Queue()
            self.cancel_event = threading.Event()
            runtime = Runtime(self.endpoints, settings, self.results.put, self.cancel_event)
            thread = threading.Thread(
                target=serve,
                args=(self.tasks, self.results, self.cancel_event, runtime, settings.concurrency),
                name="drtransfer-pool",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
            return
        self.context = multiprocessing.get_context(settings.start_method)
        self.tasks = self.context.Queue()
        self.results = self.context.Queue()
        self.cancel_event = self.context.Event()
        for _ in range(settings.processes):
            self._spawn()

    def _spawn(self) -> None:
        process = self.context.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(self.tasks, self.results, self.cancel_event, self.endpoints, self.settings),
            name="drtransfer-worker",
            daemon=True,
        )
        process.start()
        self.processes.append(process)

    def submit(self, task: Task) -> None:
        self.tasks.put(task)

    def reports(self, timeout: float) -> Iterator[Report]:
        report = self._get(timeout)
        while report is not None:
            yield report
            report = self._get(0)
        now = time.monotonic()
        if now - self._last_health > HEALTH_INTERVAL:
            self._last_health = now
            lost = self._replace_dead()
            if lost:
                yield WorkersLost(lost)

    def _get(self, timeout: float) -> Report | None:
        try:
            report: Report = self.results.get(timeout=timeout)
        except queue.Empty:
            return None
        return report

    def _replace_dead(self) -> int:
        """Restart worker processes that died (killed, out of memory); how many were replaced."""
        dead = [p for p in self.processes if not p.is_alive()]
        for process in dead:
            self.processes.remove(process)
            self._spawn()
        return len(dead)

    def stop(self, *, cancel: bool) -> list[Report]:
        drained: list[Report] = []
        if self.tasks is None:  # never started
            return drained
        if cancel:
            self.cancel_event.set()
        else:
            for _ in range(self.settings.threads):
                self.tasks.put(STOP)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and (
            any(p.is_alive() for p in self.processes) or any(t.is_alive() for t in self.threads)
        ):
            report = self._get(0.05)
            if report is not None:
                drained.append(report)
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(5)
        while (report := self._get(0)) is not None:
            drained.append(report)
        if self.processes:
            for q in (self.tasks, self.results):
                q.cancel_join_thread()
                q.close()
        return drained


__all__ = ["LocalExecutor", "serve", "worker_main"]
