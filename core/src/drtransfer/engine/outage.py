"""Outages: the short reason a request failed for (worker side) and each endpoint's health (scheduler side).

A failure with a reason ("connection refused", "read timeout", "SlowDown" ...) means the endpoint is down,
silent or overloaded: the operation waits for it, retried with a low capped backoff, until
``stall_deadline`` passes without progress. While an endpoint fails, operations that have not started yet
are held back (not one more request each against a dead server), and the first success on it wakes every
waiting retry and held-back start at once, so throughput is back within a round trip, not after each
operation's own backoff.
"""

from __future__ import annotations

import errno
import http.client
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import botocore.exceptions

from drtransfer.engine.messages import (
    AbortTask,
    AuditTask,
    CompleteTask,
    OpTask,
    PartTask,
    PrepareTask,
    RemoveTask,
    Task,
)
from drtransfer.operations import CopyObject, Operation
from drtransfer.s3errors import untrusted_certificate

if TYPE_CHECKING:
    from drtransfer.engine.dispatch import Dispatcher

# Error codes of an answer that says "not now": the server is overloaded or failing, not refusing.
WAIT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)


CONNECTION_ERRORS = (
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ResponseStreamingError,
    http.client.HTTPException,
    OSError,
)


def outage_reason(error: BaseException, code: str) -> str:
    """A few words when ``error`` says the endpoint is down, silent or overloaded, else ``""``."""
    if untrusted_certificate(error):  # a connection error to botocore, but waiting cannot fix it
        return ""
    if isinstance(error, botocore.exceptions.ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in WAIT_CODES:
            return code
        return f"HTTP {status}" if status >= 500 else ""
    if isinstance(error, botocore.exceptions.ConnectTimeoutError):
        return "connect timeout"
    if isinstance(error, botocore.exceptions.ReadTimeoutError | TimeoutError):
        return "read timeout"
    if _refused(error):
        return "connection refused"
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return "cannot connect"
    if isinstance(error, CONNECTION_ERRORS) or _is_urllib3(error):
        return "connection lost"
    return ""


def _refused(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(6):  # botocore keeps the socket error in kwargs["error"], urllib3 in __context__
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        if "Connection refused" in str(seen):
            return True
        inner = getattr(seen, "kwargs", {}).get("error") if hasattr(seen, "kwargs") else None
        seen = inner if isinstance(inner, BaseException) else (seen.__cause__ or seen.__context__)
    return False


def _is_urllib3(error: BaseException) -> bool:
    return type(error).__module__.startswith("urllib3")


def operation_endpoints(op: Operation) -> frozenset[str]:
    if isinstance(op, CopyObject):
        return frozenset((op.source.location.endpoint, op.target.endpoint))
    return frozenset((op.target.endpoint,))


def task_endpoints(task: Task) -> frozenset[str]:
    """The endpoints a task talks to (a successful report proves them alive)."""
    if isinstance(task, OpTask):
        return operation_endpoints(task.op)
    if isinstance(task, PartTask):
        return frozenset((task.source.endpoint, task.upload.endpoint))
    if isinstance(task, CompleteTask | AbortTask):
        return frozenset((task.upload.endpoint,))
    if isinstance(task, PrepareTask | AuditTask):
        return frozenset((task.root.endpoint, *(o.endpoint for o in getattr(task, "others", ()))))
    if isinstance(task, RemoveTask):
        return frozenset(t.endpoint for t in task.targets)
    return frozenset((task.endpoint,))  # ProbeTask


@dataclass
class Failing:
    """An endpoint from its first failure after its last success."""

    name: str
    since: float
    reason: str
    failures: int = 0
    waiting: set[int] = field(default_factory=set)  # timers to fire at its next success


class EndpointHealth:
    """Which endpoints fail right now, since when and why; wakes their waiters when one answers."""

    def __init__(self, dispatch: Dispatcher, deadline: float, base_delay: float, max_delay: float) -> None:
        self.dispatch = dispatch
        self.deadline = deadline
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failing: dict[str, Failing] = {}
        self.wakes = 0  # timers fired early by a success (for tests and benchmarks)

    def failed(self, name: str, reason: str) -> Failing:
        state = self.failing.setdefault(name, Failing(name, time.monotonic(), reason))
        state.reason = reason
        state.failures += 1
        return state

    def ok(self, names: Iterable[str]) -> None:
        """A task on ``names`` succeeded: they are healthy, and everything waiting for them goes now."""
        for name in names:
            state = self.failing.pop(name, None)
            if state is not None:
                for timer in state.waiting:
                    self.wakes += self.dispatch.wake(timer)

    def since(self, names: Iterable[str]) -> Failing | None:
        """The longest-failing of ``names``, None when they are all healthy."""
        found = [self.failing[n] for n in names if n in self.failing]
        return min(found, key=lambda s: s.since) if found else None

    def retry(self, name: str, action: Callable[[], None]) -> float:
        """Run ``action`` after a backoff (capped low) or at the next success on ``name``; the delay."""
        state = self.failing[name]
        base = min(self.max_delay, self.base_delay * 2 ** max(0, state.failures - 1))
        delay = float(base * random.uniform(0.5, 1.0))
        state.waiting.add(self.dispatch.later(delay, action))
        return delay

    def hold(self, names: Iterable[str], action: Callable[[], None]) -> None:
        """Run ``action`` at the next success on any of the failing ``names``, or at their deadline."""
        states = [self.failing[n] for n in names if n in self.failing]
        due = min(s.since for s in states) + self.deadline - time.monotonic()
        timer = self.dispatch.later(max(0.0, due), action)
        for state in states:
            state.waiting.add(timer)
