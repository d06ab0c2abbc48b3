"""The parent's side of the ``ray`` executor: actors on every node, tasks placed by model, lost nodes.

Actors are pinned to their node (hard node affinity) and need no CPU of Ray's (``num_cpus=0``: their work
is network I/O, bounded by the scheduler), ``actors_per_node`` of them per node, each running at most
``concurrency`` tasks at once (its other calls have threads of their own). A task of a
model with a node (``placement``) goes to an actor of that node, any other to the actor with the fewest
tasks anywhere. An actor whose node left (or that died) is lost: its tasks are reported lost and the
scheduler retries them on the others; a task that no live actor may run fails with one sentence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from drtransfer.endpoints import Endpoint
from drtransfer.engine.executor import Executor, ExecutorChoice
from drtransfer.engine.local_executor import ends_task
from drtransfer.engine.messages import Report, Task, TaskFailed, WorkersLost
from drtransfer.engine.settings import EngineSettings
from drtransfer.errors import ConfigError
from drtransfer_plugins.ray_executor.node import NodeWorker, public

log = logging.getLogger("drtransfer.ray")
DRAIN_WAIT = 0.2  # longest an actor holds a drain call open waiting for a report
STOP_TIMEOUT = 10.0  # seconds the running tasks get to end at stop
CONTROL = "control"  # the actors' concurrency group for everything but tasks
# Resources every Ray node has: not names a run can be placed by.
STANDARD_RESOURCES = {"CPU", "GPU", "memory", "object_store_memory", "accelerator_type"}


@dataclass(frozen=True)
class ClusterNode:
    node_id: str
    names: frozenset[str]  # its custom resources and label values: what DRTRANSFER_NODE matches

    @property
    def label(self) -> str:
        return ", ".join(sorted(self.names)) or self.node_id[:12]


def live_nodes() -> list[ClusterNode]:
    nodes = []
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        if not node.get("Alive"):
            continue
        resources = {name for name in node.get("Resources", {}) if name not in STANDARD_RESOURCES}
        names = {name for name in resources if not name.startswith("node:")} | set(node.get("Labels", {}).values())
        nodes.append(ClusterNode(node["NodeID"], frozenset(names)))
    return nodes


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` ("auto": the one this machine belongs to); False when this
    process had already joined one (then it is not ours to leave)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or "auto", log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ConfigError(
            f"Cannot join the Ray cluster at {address or 'auto'} ({type(error).__name__}); start one with "
            f"ray start --head (see docs/scale-out.md) or give its address with --ray-address."
        ) from None
    return True


def prepare(choice: ExecutorChoice, settings: EngineSettings) -> tuple[Executor, EngineSettings]:
    """The executor factory: join the cluster; the scheduler's slots are every actor's threads."""
    joined = connect(choice.address)
    nodes = live_nodes()
    per_node = max(1, settings.processes)
    executor = RayExecutor(per_node, leave=joined)
    # An actor runs `concurrency` tasks at once (max_concurrency below): no lanes of their own for small
    # requests, so the scheduler keeps no more of them in flight than the actors run.
    processes = per_node * max(1, len(nodes))
    return executor, dataclasses.replace(settings, processes=processes, small_requests=settings.concurrency)


@dataclass
class Actor:
    handle: Any
    node: ClusterNode
    assigned: set[int] = field(default_factory=set)
    drain: Any = None  # the drain call in flight
    lost: bool = False
    runs_on: str = ""  # the node id the actor itself reports


def control(actor: Actor, method: str) -> Any:
    """``actor``'s ``method`` on its control threads (the task threads may all be busy)."""
    return getattr(actor.handle, method).options(concurrency_group=CONTROL)


class RayExecutor:
    """An :class:`~drtransfer.engine.executor.Executor` over the actors of a Ray cluster."""

    def __init__(self, actors_per_node: int = 1, *, leave: bool = False) -> None:
        self.actors_per_node = actors_per_node
        self.leave = leave  # ray.shutdown() at stop: this executor joined the cluster
        self.actors: list[Actor] = []
        self.placement: dict[int, str] = {}
        self.pending: list[Report] = []  # reports made here (tasks nobody may run, lost actors)
        self.ran_on: dict[int, set[str]] = {}  # model -> ids of the nodes its tasks ran on (as the actors say)
        self.most_at_once: list[int] = []  # per live actor at stop: the most tasks it ran at once

    def start(
        self, endpoints: Mapping[str, Endpoint], settings: EngineSettings, placement: Mapping[int, str] | None = None
    ) -> None:
        self.placement = dict(placement or {})
        # drain, cancel ... on threads of their own, never behind the tasks
        remote = ray.remote(concurrency_groups={CONTROL: 2})(NodeWorker)  # type: ignore[call-overload]
        for node in live_nodes():
            for _ in range(self.actors_per_node):
                handle = remote.options(
                    num_cpus=0,
                    max_concurrency=settings.concurrency,  # the task threads: run() calls only
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                ).remote(public(endpoints), settings, node.label)
                self.actors.append(Actor(handle, node))
        self._provide_credentials(endpoints)

    def _provide_credentials(self, endpoints: Mapping[str, Endpoint]) -> None:
        """Send each actor, through the object store, only the credentials its node could not resolve."""
        answers = ray.get([control(actor, "where").remote() for actor in self.actors])
        calls = []
        for actor, (node_id, missing) in zip(self.actors, answers, strict=True):
            actor.runs_on = node_id
            secrets = {name: endpoints[name].credentials for name in missing if endpoints[name].credentials}
            if secrets:
                calls.append(control(actor, "provide").remote(ray.put(secrets)))
        ray.get(calls)

    def submit(self, task: Task) -> None:
        model = getattr(task, "model", -1)
        wanted = self.placement.get(model)
        allowed = [a for a in self.actors if not a.lost and (wanted is None or wanted in a.node.names)]
        if not allowed:
            self.pending.append(TaskFailed(task.task_id, self._nowhere(wanted), retryable=False, rewind=0))
            return
        actor = min(allowed, key=lambda a: len(a.assigned))
        actor.assigned.add(task.task_id)
        self.ran_on.setdefault(model, set()).add(actor.runs_on)
        actor.handle.run.remote(task)

    def _nowhere(self, wanted: str | None) -> str:
        if wanted is None:
            return "No node of the Ray cluster is left to run the transfer's tasks; start the nodes again and re-run."
        return (
            f"No node of the Ray cluster named {wanted!r} (DRTRANSFER_NODE) is running, and no other node may "
            f"read this run's source; start it (ray start --address ... --resources '{{\"{wanted}\": 1}}') and re-run."
        )

    def reports(self, timeout: float) -> Iterator[Report]:
        yield from self._collect(timeout)

    def _collect(self, timeout: float) -> list[Report]:
        live = [a for a in self.actors if not a.lost]
        for actor in live:
            if actor.drain is None:
                actor.drain = control(actor, "drain").remote(min(timeout, DRAIN_WAIT))
        out, self.pending = self.pending, []
        refs = {actor.drain: actor for actor in live}
        if refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
            for ref in ready:
                out.extend(self._received(refs[ref], ref))
        return out

    def _received(self, actor: Actor, ref: Any) -> list[Report]:
        actor.drain = None
        try:
            reports: list[Report] = ray.get(ref)
        except ray.exceptions.RayError:  # the actor died, or its node left the cluster
            return self._lose(actor)
        for report in reports:
            if ends_task(report):
                actor.assigned.discard(report.task_id)  # type: ignore[union-attr]
        return reports

    def _lose(self, actor: Actor) -> list[Report]:
        actor.lost = True
        log.warning("lost a transfer actor on the Ray node %s; its tasks are retried elsewhere", actor.node.label)
        with contextlib.suppress(Exception):
            ray.kill(actor.handle)
        lost = tuple(sorted(actor.assigned))
        actor.assigned.clear()
        return [WorkersLost(1, lost)]

    def stop(self, *, cancel: bool) -> list[Report]:
        drained: list[Report] = []
        if cancel:
            for actor in self.actors:
                if not actor.lost:
                    control(actor, "cancel").remote()
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(a.assigned for a in self.actors if not a.lost):
            drained.extend(self._collect(0.1))
        drained.extend(self.pending)
        self.pending = []
        live = [a for a in self.actors if not a.lost]
        with contextlib.suppress(ray.exceptions.RayError):
            self.most_at_once = ray.get([control(a, "most_at_once").remote() for a in live], timeout=STOP_TIMEOUT)
        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor.handle)
        self.actors = []
        if self.leave:
            ray.shutdown()
        return drained


__all__ = ["ClusterNode", "RayExecutor", "connect", "live_nodes", "prepare"]
