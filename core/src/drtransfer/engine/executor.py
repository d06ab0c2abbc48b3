"""The seam between the scheduler and whatever runs its tasks.

The scheduler only decides; an :class:`Executor` runs the tasks it submits, anywhere, and hands back what
they report. The built-in one is :class:`~drtransfer.engine.local_executor.LocalExecutor` (worker processes
on this machine, or threads in this process with ``processes=0``); another executor (a cluster of actors, a
native data path) implements the same four methods and nothing else.

The contract:

- Tasks and reports are the frozen, picklable messages of :mod:`drtransfer.engine.messages`; endpoints and
  settings reach the workers once, in :meth:`Executor.start`. Each worker runs a task with
  :func:`drtransfer.engine.worker.run_task` on a :class:`~drtransfer.engine.runtime.Runtime` of its own.
- Every submitted task ends in exactly one report carrying its ``task_id`` (its result or a
  :class:`~drtransfer.engine.messages.TaskFailed`), unless its worker is lost: then the executor reports
  :class:`~drtransfer.engine.messages.WorkersLost`, and the scheduler gives up on every task in flight and
  tries again. Progress, retries and started uploads are reported along the way.
- The executor keeps no task order and no memory bound: the scheduler bounds what is in flight.
- ``placement`` (model index -> node name, from each run's ``DRTRANSFER_NODE``) says where a model's
  tasks must run; an executor with a single machine ignores it.

Executors are registered through the ``drtransfer_register_executors`` hook as an
:class:`ExecutorFactory` under a name (``--executor NAME``); ``local`` is core's own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from drtransfer.endpoints import Endpoint
from drtransfer.engine.messages import Report, Task
from drtransfer.engine.settings import EngineSettings


class Executor(Protocol):
    def start(
        self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, placement: Mapping[int, str] | None = None
    ) -> None:
        """Start the workers (``settings.processes`` x ``settings.concurrency`` task slots); ``placement``
        maps a model index to the node its tasks must run on (models without one run anywhere)."""

    def submit(self, task: Task) -> None:
        """Queue ``task`` for the next free worker; never blocks."""

    def reports(self, timeout: float) -> Iterator[Report]:
        """The reports that arrived: waits up to ``timeout`` seconds for the first, then yields the others
        already there without waiting."""

    def stop(self, *, cancel: bool) -> list[Report]:
        """Stop every worker, cancelling the running tasks when ``cancel`` (else after they finish), and
        return the reports that still arrived."""


EXECUTOR_ENV = "DRTRANSFER_EXECUTOR"
ADDRESS_ENV = "RAY_ADDRESS"


@dataclass(frozen=True)
class ExecutorChoice:
    """``--executor NAME`` and ``--ray-address ADDRESS`` (or ``DRTRANSFER_EXECUTOR`` / ``RAY_ADDRESS``)."""

    name: str = "local"
    address: str | None = None  # of the cluster: an address, "auto", or None (the executor's default)

    @classmethod
    def resolve(
        cls, name: str | None = None, address: str | None = None, environ: Mapping[str, str] | None = None
    ) -> ExecutorChoice:
        """Flags win over the environment; nothing given is the local executor."""
        env = os.environ if environ is None else environ
        chosen = name or env.get(EXECUTOR_ENV, "").strip() or "local"
        return cls(chosen, address or env.get(ADDRESS_ENV, "").strip() or None)


class ExecutorFactory(Protocol):
    """What a plugin registers: builds an executor for one engine run, and the settings the scheduler
    must use with it (``processes`` = the workers it runs, so the scheduler keeps all of them busy)."""

    def __call__(self, choice: ExecutorChoice, settings: EngineSettings) -> tuple[Executor, EngineSettings]: ...


__all__ = ["ADDRESS_ENV", "EXECUTOR_ENV", "Executor", "ExecutorChoice", "ExecutorFactory"]
