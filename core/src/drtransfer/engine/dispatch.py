"""The scheduler's loop: what goes to the executor next, how much may be in flight, and when to try again.

Control tasks (probes, aborts) go first; then the models are served round-robin, each from its ready
queue (parts, completions, prepares ...) or by starting its next operation, so one large model never holds
the others back. Tasks in flight are bounded in number (2 x the workers' threads), transfers among them
(2 x ``processes x concurrency``) and in the bytes they buffer (``processes x concurrency x part size``),
so memory stays about that whatever the object sizes, while small requests (objects up to
``SMALL_OBJECT``, listings, completes) fill the threads left: they wait on the servers, not on bytes.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drtransfer.engine.executor import Executor
from drtransfer.engine.lifecycle import ModelState
from drtransfer.engine.messages import AbortTask, OpTask, PartTask, ProbeTask, Report, Task
from drtransfer.engine.outage import EndpointHealth
from drtransfer.engine.settings import SMALL_OBJECT, EngineSettings

Item = tuple[Task, int]  # a task and the bytes it buffers in a worker
LOOP_WAIT = 0.2  # longest wait for a report between two dispatch rounds


@dataclass
class Inflight:
    task: Task
    mem: int
    model: int
    op: int
    generation: int  # of the operation when the task was submitted
    small: bool  # a small request (small_request): not counted among the transfers


def small_request(task: Task) -> bool:
    """True for a task that moves at most ``SMALL_OBJECT`` bytes of an object: an operation on a small
    object, or a task that moves none (prepare, probe, complete, abort, remove, audit)."""
    if isinstance(task, OpTask):
        return task.op.size <= SMALL_OBJECT
    return not isinstance(task, PartTask)


class Dispatcher:
    """Feeds ``executor``: ``model_item(model)`` gives a model's next task, if it has one now."""

    def __init__(
        self,
        executor: Executor,
        settings: EngineSettings,
        models: Sequence[ModelState],
        model_item: Callable[[ModelState], Item | None],
    ) -> None:
        self.executor = executor
        self.settings = settings
        self.models = models
        self.model_item = model_item
        self.ids = itertools.count(1)
        self.control: deque[Item] = deque()  # probes and aborts: before anything else
        self.inflight: dict[int, Inflight] = {}
        self.inflight_mem = 0
        self.max_tasks = settings.in_flight
        self.max_transfers = settings.threads * 2
        self.transfers = 0  # tasks in flight that are not small requests
        self.mem_budget = settings.threads * settings.part_size
        self.timers: list[tuple[float, int]] = []  # (due, timer id); a fired or woken timer's entry stays
        self.actions: dict[int, Callable[[], None]] = {}  # timer id -> what it runs, until it runs
        self.rr = 0
        self.health = EndpointHealth(self, settings.stall_deadline, settings.retry_base_delay, settings.retry_max_delay)

    def new_id(self) -> int:
        return next(self.ids)

    def urgent(self, task: Task) -> None:
        """Send ``task`` before any model's task (it buffers nothing)."""
        self.control.append((task, 0))

    def later(self, delay: float, action: Callable[[], None]) -> int:
        """Run ``action`` in ``delay`` seconds (or when woken); the timer's id."""
        timer = next(self.ids)
        self.actions[timer] = action
        heapq.heappush(self.timers, (time.monotonic() + delay, timer))
        return timer

    def wake(self, timer: int) -> int:
        """Run timer ``timer`` at the next round instead of at its time; 1 if it was still waiting."""
        if timer not in self.actions:
            return 0
        heapq.heappush(self.timers, (0.0, timer))
        return 1

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, with jitter, within the settings' bounds."""
        base = min(self.settings.retry_max_delay, self.settings.retry_base_delay * 2 ** max(0, attempt - 1))
        return float(base * random.uniform(0.5, 1.0))

    @property
    def idle(self) -> bool:
        """Nothing in flight, queued for control or waiting on a timer."""
        return not self.inflight and not self.control and not self.actions

    def run(self, done: Callable[[], bool], handle: Callable[[Report], None]) -> None:
        """Dispatch, wait for reports and hand each to ``handle`` until ``done()``."""
        while not done():
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                action = self.actions.pop(heapq.heappop(self.timers)[1], None)
                if action is not None:
                    action()
            self._fill()
            wait = LOOP_WAIT
            if self.timers:
                wait = max(0.0, min(wait, self.timers[0][0] - now))
            for report in self.executor.reports(wait):
                handle(report)

    def finished(self, task_id: int) -> Inflight | None:
        """The task ``task_id`` reported its end; None when it is not in flight (given up on)."""
        entry = self.inflight.pop(task_id, None)
        if entry is not None:
            self.inflight_mem -= entry.mem
            self.transfers -= not entry.small
        return entry

    def _fill(self) -> None:
        small_only = False  # a transfer is waiting for room: only small requests may pass it
        while len(self.inflight) < self.max_tasks:
            item = self._next_item(small_only)
            if item is None:
                return
            task, mem = item
            small = small_request(task)
            if (self.inflight_mem and self.inflight_mem + mem > self.mem_budget) or (
                not small and self.transfers >= self.max_transfers
            ):
                self._push_back(task, mem)
                if small or small_only:
                    return
                small_only = True
                continue
            self._submit(task, mem, small)

    def _next_item(self, small_only: bool = False) -> Item | None:
        """The next task, models taken round-robin; ``small_only``: a model whose next task is a transfer
        is passed over (that task stays first in its queue)."""
        if self.control:
            return self.control.popleft()
        count = len(self.models)
        for step in range(count):
            model = self.models[(self.rr + step) % count]
            if small_only and model.ready and not small_request(model.ready[0][0]):
                continue
            item = self.model_item(model)
            if item is None:
                continue
            if small_only and not small_request(item[0]):
                model.ready.appendleft(item)  # started now, sent when a transfer ends
                continue
            self.rr = (self.rr + step + 1) % count
            return item
        return None

    def _push_back(self, task: Task, mem: int) -> None:
        model = getattr(task, "model", -1)
        if isinstance(task, ProbeTask | AbortTask) or model < 0:
            self.control.appendleft((task, mem))
        else:
            self.models[model].ready.appendleft((task, mem))

    def _submit(self, task: Task, mem: int, small: bool) -> None:
        model = getattr(task, "model", -1)
        op_index = getattr(task, "op_index", -1)
        generation = self.models[model].ops[op_index].generation if model >= 0 and op_index >= 0 else 0
        self.inflight[task.task_id] = Inflight(task, mem, model, op_index, generation, small)
        self.inflight_mem += mem
        self.transfers += not small
        if model >= 0 and self.models[model].began is None:
            self.models[model].began = time.monotonic()  # its own clock: queued time is not its time
        self.executor.submit(task)
