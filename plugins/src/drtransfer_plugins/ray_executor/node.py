"""What runs on a Ray node: one :class:`NodeWorker` per actor, with its own Runtime and clients.

The actor's threads run :func:`drtransfer.engine.worker.run_task` on the parent's tasks and keep the
reports until the parent collects them (:meth:`NodeWorker.drain`), so progress arrives while a part
moves. Credentials: the endpoints arrive without them; the actor resolves each endpoint's profile with
the node's own AWS configuration and environment, and only what it cannot resolve is sent by the
parent, through Ray's object store (:meth:`NodeWorker.provide`), never in a task's arguments or name.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping

from drtransfer.endpoints import Credentials, Endpoint, resolve_credentials
from drtransfer.engine.messages import Report, Task, TaskFailed
from drtransfer.engine.runtime import Runtime
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.worker import run_task
from drtransfer.errors import DrTransferError


def _node_id() -> str:
    try:
        import ray
    except ImportError:  # used outside Ray (tests)
        return ""
    return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""


def public(endpoints: Mapping[str, Endpoint]) -> dict[str, Endpoint]:
    """The endpoints without their credentials: what may travel in an actor's arguments."""
    return {name: dataclasses.replace(endpoint, credentials=None) for name, endpoint in endpoints.items()}


class NodeWorker:
    """The body of one actor (``ray.remote`` wraps it; tests may use it directly)."""

    def __init__(self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, node: str) -> None:
        self.node = node
        self.settings = settings
        self.endpoints = dict(endpoints)
        self.cancel_flag = threading.Event()
        self.pending: list[Report] = []
        self.arrived = threading.Condition()
        self.running = 0
        self.peak = 0  # the most tasks that ran at once (at most ``concurrency``)
        self.missing = [name for name, endpoint in self.endpoints.items() if not self._resolve(name, endpoint)]
        self.runtime = Runtime(self.endpoints, settings, self.emit, self.cancel_flag)

    def _resolve(self, name: str, endpoint: Endpoint) -> bool:
        """The node's own credentials for ``endpoint``'s profile (or its default chain), if it has them."""
        if endpoint.profile is None:
            return False
        try:
            found = resolve_credentials(name, profile=endpoint.profile)
        except DrTransferError:
            return False
        if found is not None:
            self.endpoints[name] = dataclasses.replace(endpoint, credentials=found)
        return found is not None

    def where(self) -> tuple[str, list[str]]:
        """(the Ray id of the node this actor runs on, endpoints it resolved no credentials for)."""
        return _node_id(), self.missing

    def provide(self, credentials: Mapping[str, Credentials]) -> None:
        """The parent's credentials for the endpoints this node has none for."""
        for name, found in credentials.items():
            self.endpoints[name] = dataclasses.replace(self.endpoints[name], credentials=found)
        self.runtime = Runtime(self.endpoints, self.settings, self.emit, self.cancel_flag)

    def emit(self, report: Report) -> None:
        with self.arrived:
            self.pending.append(report)
            self.arrived.notify()

    def run(self, task: Task) -> None:
        if self.cancel_flag.is_set():
            self.emit(TaskFailed(task.task_id, "cancelled", retryable=False, rewind=0))
            return
        with self.arrived:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            run_task(self.runtime, task)
        finally:
            with self.arrived:
                self.running -= 1

    def most_at_once(self) -> int:
        return self.peak

    def drain(self, wait: float) -> list[Report]:
        """The reports since the last call; waits up to ``wait`` seconds for the first."""
        with self.arrived:
            if not self.pending:
                self.arrived.wait(wait)
            out, self.pending = self.pending, []
        return out

    def cancel(self) -> None:
        self.cancel_flag.set()

    def __repr__(self) -> str:  # what Ray shows for the actor: no endpoint, no secret
        return f"NodeWorker({self.node})"
