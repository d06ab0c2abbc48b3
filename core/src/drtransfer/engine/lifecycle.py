"""Each model's way through the run, phase by phase, and the state the scheduler keeps of it.

A model's target root is listed first (:attr:`Phase.PREPARE`); commit objects of an earlier, different
upload are removed before anything is written (``CLEAR``); its regular operations run (``RUN``), then its
commit operations one at a time in plan order, only when every other one succeeded (``COMMIT``); the target
is listed once to check every object (``AUDIT``); when an operation or the audit failed, the commit objects
it wrote are removed (``ROLLBACK``): a target never holds commit objects without everything they commit.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drtransfer.endpoints import Endpoint
from drtransfer.engine.audit import Expectation, audit, expectations
from drtransfer.engine.checksums import clean_etag, is_plain_md5
from drtransfer.engine.messages import (
    AuditDone,
    AuditTask,
    PartDone,
    PartSpec,
    PrepareDone,
    PrepareTask,
    RemoveDone,
    RemoveTask,
    Report,
    TargetState,
    Task,
    TaskFailed,
    UploadRef,
    Verify,
)
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.strategy import Strategy
from drtransfer.errors import ConfigError
from drtransfer.operations import (
    CopyObject,
    ModelPlan,
    ModelResult,
    ObjectLocation,
    Operation,
    OperationResult,
    PutBytes,
)

if TYPE_CHECKING:
    from drtransfer.engine.dispatch import Dispatcher

log = logging.getLogger("drtransfer.engine")
Notify = Callable[..., None]  # notify("on_progress", model_id, delta): calls every subscriber
WRITTEN = ("put", "copied", "skipped")


class Phase(enum.Enum):
    """PREPARE -> [CLEAR] -> RUN -> [COMMIT] -> [AUDIT] -> [ROLLBACK] -> DONE."""

    PREPARE = "prepare"
    CLEAR = "clear"
    RUN = "run"
    COMMIT = "commit"
    AUDIT = "audit"
    ROLLBACK = "rollback"
    DONE = "done"


@dataclass
class OpState:
    """One operation: its attempts, its multipart upload and parts while one runs, its result."""

    model: int
    index: int
    op: Operation
    attempt: int = 0
    generation: int = 0  # bumped when an attempt is given up: its late reports are stale
    force_stream: bool = False
    counted: int = 0  # progress bytes reported for the current attempt
    progress_at: float = 0.0  # monotonic time of its start or last progress: the stall deadline runs from it
    upload: UploadRef | None = None
    parts: dict[int, PartSpec] = field(default_factory=dict)
    part_attempts: dict[int, int] = field(default_factory=dict)
    waits: dict[int, int] = field(default_factory=dict)  # part number (-1: the operation) -> outage retries
    done_parts: dict[int, PartDone] = field(default_factory=dict)
    verify: Verify | None = None
    copy: bool = False
    crc: str | None = None
    strategy: str = ""
    planned: Strategy | None = None  # choose_strategy's answer without fallback or probe (Attempts._planned)
    result: OperationResult | None = None


@dataclass
class ModelState:
    index: int
    plan: ModelPlan
    ops: list[OpState]
    pending: deque[int]  # regular operations not started yet
    commit: list[int]  # commit operations, in plan order
    ready: deque[tuple[Task, int]] = field(default_factory=deque)  # (task, buffered bytes)
    listing: dict[str, TargetState] | None = None
    phase: Phase = Phase.PREPARE
    active: int = 0  # operations started and not finished
    commit_next: int = 0
    remove_attempts: int = 0
    audit: list[Expectation] = field(default_factory=list)
    audit_attempts: int = 0
    failure: str | None = None  # why the model failed when no operation did (clearing or the audit failed)
    began: float | None = None  # when its first task went out (monotonic)
    result: ModelResult | None = None


def new_model(index: int, plan: ModelPlan, endpoints: Mapping[str, Endpoint]) -> ModelState:
    ops = [OpState(index, n, op) for n, op in enumerate(plan.operations)]
    for op in plan.operations:
        for location in [*_locations(op), plan.target_root]:
            if location.endpoint not in endpoints:
                raise ConfigError(
                    f"Model {plan.model_id} uses an endpoint named {location.endpoint!r} that is not "
                    f"configured; define it or fix the plan."
                )
    regular = deque(n for n, op in enumerate(plan.operations) if not op.commit)
    commit = [n for n, op in enumerate(plan.operations) if op.commit]
    return ModelState(index, plan, ops, regular, commit)


def _locations(op: Operation) -> list[ObjectLocation]:
    if isinstance(op, CopyObject):
        return [op.source.location, op.target]
    return [op.target]


def sweep_assignments(models: Sequence[ModelState]) -> dict[int, tuple[ObjectLocation, ...]]:
    """Which model's prepare task sweeps which roots: the first model of each (endpoint, bucket) sweeps
    the roots of all of them with one listing (every prepare ends before any upload starts, so none of
    this run's uploads is there yet); fresh roots are never swept."""
    groups: dict[tuple[str, str], list[ModelState]] = {}
    for model in models:
        root = model.plan.target_root
        if not model.plan.fresh_target:
            groups.setdefault((root.endpoint, root.bucket), []).append(model)
    return {group[0].index: tuple(dict.fromkeys(m.plan.target_root for m in group)) for group in groups.values()}


def known_listing(model: ModelState) -> dict[str, TargetState]:
    """The plan's target listing, of the keys the plan writes."""
    keys = {op.target.key for op in model.plan.operations}
    listing = model.plan.target_listing or ()
    return {key: TargetState(size, etag) for key, size, etag in listing if key in keys}


def inside(location: ObjectLocation, root: ObjectLocation) -> bool:
    return location.endpoint == root.endpoint and location.bucket == root.bucket and location.key.startswith(root.key)


class Lifecycle:
    """Moves the models from phase to phase as their tasks report; queues their prepare, remove and audit
    tasks (operations are started by :class:`~drtransfer.engine.attempts.Attempts`)."""

    def __init__(
        self, models: Sequence[ModelState], settings: EngineSettings, dispatch: Dispatcher, notify: Notify
    ) -> None:
        self.models = models
        self.settings = settings
        self.dispatch = dispatch
        self.notify = notify
        self.prepares_left = len(models)  # no operation starts before every prepare is done
        self.prepare_attempts: dict[int, int] = {}
        self.sweeps: dict[int, tuple[ObjectLocation, ...]] = {}  # model index -> the roots its prepare sweeps
        self.pending_removals: list[ObjectLocation] = []  # commit objects a rollback could not delete yet
        self.started = time.monotonic()

    def start(self) -> None:
        self.sweeps = sweep_assignments(self.models)
        for model in self.models:
            self._queue_prepare(model)

    @property
    def all_done(self) -> bool:
        return all(m.phase is Phase.DONE for m in self.models)

    def next_operation(self, model: ModelState) -> OpState | None:
        """The operation of ``model`` to start now, if any: regular ones in any number, commit ones one at
        a time."""
        if self.prepares_left:
            return None
        if model.phase is Phase.RUN and model.pending:
            return model.ops[model.pending.popleft()]
        if model.phase is Phase.COMMIT and model.active == 0 and model.commit_next < len(model.commit):
            model.commit_next += 1
            return model.ops[model.commit[model.commit_next - 1]]
        return None

    # ---- prepare -----------------------------------------------------------------------------------

    def _queue_prepare(self, model: ModelState) -> None:
        plan = model.plan
        sweep = self.sweeps.get(model.index, ())
        listed = plan.target_listing is not None
        if plan.fresh_target or (listed and not sweep):  # nothing to ask the target
            model.listing = {} if plan.fresh_target else known_listing(model)
            self._prepared(model)
            return
        keys = frozenset(op.target.key for op in plan.operations)
        task = PrepareTask(
            self.dispatch.new_id(),
            model.index,
            plan.target_root,
            keys,
            self.settings.dry_run,
            sweep=sweep,
            listed=listed,
        )
        model.ready.append((task, 0))

    def on_prepare(self, task: PrepareTask, report: Report) -> None:
        model = self.models[task.model]
        if isinstance(report, PrepareDone):
            if task.listed:
                model.listing = known_listing(model)
            elif report.listing is not None:
                model.listing = {key: TargetState(size, etag) for key, size, etag in report.listing}
            if report.note:
                log.warning("%s: %s", model.plan.model_id, report.note)
            if report.swept:
                where = ", ".join(root.url for root in task.sweep or (task.root,))
                log.info("%s: aborted %d unfinished upload(s) of an earlier run under %s", model.plan.model_id,
                         report.swept, where)  # fmt: skip
        else:
            error, _ = _failure(report)
            attempts = self.prepare_attempts.get(task.model, 1)
            if self._again(attempts, report, lambda: self._queue_prepare(model)):
                self.prepare_attempts[task.model] = attempts + 1
                return
            log.warning("%s: %s", model.plan.model_id, error)  # ops will HEAD each target instead
            if task.listed:  # the sweep failed; the plan's listing still holds
                model.listing = known_listing(model)
        self._prepared(model)

    def _prepared(self, model: ModelState) -> None:
        """``model``'s target is known (or cannot be): clear stale commit objects, then run."""
        self.prepares_left -= 1
        stale = self._stale_commits(model)
        if stale and not self.settings.dry_run:
            model.phase = Phase.CLEAR
            self._queue_remove(model, stale)
            return
        self._forget(model, stale)  # a dry run shows them written, as the real run writes them
        model.phase = Phase.RUN
        self.check(model)

    # ---- commit objects: clear stale ones, roll back partial ones ----------------------------------

    def _stale_commits(self, model: ModelState) -> list[ObjectLocation]:
        """The commit objects at the target when one of them differs from what this plan commits (an
        earlier upload of another checkpoint or model): all of them go before anything is written."""
        if not model.listing:
            return []
        present = [model.ops[n].op for n in model.commit if model.ops[n].op.target.key in model.listing]
        for op in present:
            found = model.listing[op.target.key]
            if isinstance(op, PutBytes):
                differs = found.size != len(op.body) or found.etag != hashlib.md5(op.body).hexdigest()
            elif isinstance(op, CopyObject):
                etag = clean_etag(op.source.etag)
                differs = found.size != op.source.size or (is_plain_md5(etag) and found.etag != etag)
            else:
                differs = True
            if differs:
                return [op.target for op in present]
        return []

    def written_commits(self, model: ModelState) -> list[ObjectLocation]:
        return [
            model.ops[n].op.target
            for n in model.commit
            if (result := model.ops[n].result) is not None and result.status in WRITTEN
        ]

    def _forget(self, model: ModelState, targets: Sequence[ObjectLocation]) -> None:
        """Drop removed objects from the model's listing, so no operation skips one as already there."""
        if model.listing is not None:
            for target in targets:
                model.listing.pop(target.key, None)

    def _queue_remove(self, model: ModelState, targets: Sequence[ObjectLocation]) -> None:
        model.ready.append((RemoveTask(self.dispatch.new_id(), model.index, tuple(targets)), 0))

    def on_remove(self, task: RemoveTask, report: Report) -> None:
        model = self.models[task.model]
        if isinstance(report, RemoveDone):
            if model.phase is Phase.CLEAR:
                self._forget(model, task.targets)
                model.phase = Phase.RUN
                self.check(model)
            else:
                self._finish(model)
            return
        error, _ = _failure(report)
        model.remove_attempts += 1
        if self._again(model.remove_attempts, report, lambda: self._queue_remove(model, task.targets)):
            return
        if model.phase is Phase.CLEAR:
            model.failure = (
                f"{error.rstrip('.')}; the commit objects of an earlier upload under {model.plan.target_root.url} "
                f"could not be removed, so nothing was written."
            )
        else:
            log.warning("%s: could not remove commit objects yet: %s", model.plan.model_id, error)
            self.pending_removals.extend(task.targets)
        self._finish(model)

    # ---- after each operation ----------------------------------------------------------------------

    def check(self, model: ModelState) -> None:
        """Move ``model`` on when its current phase has nothing left to run."""
        if model.phase not in (Phase.RUN, Phase.COMMIT) or model.active:
            return
        if model.phase is Phase.RUN:
            if model.pending:
                return
            if model.commit and not self.failed(model):
                model.phase = Phase.COMMIT
            else:
                self._conclude(model)
                return
        if model.commit_next >= len(model.commit) or self.failed(model):
            self._conclude(model)

    def _conclude(self, model: ModelState) -> None:
        """After a model's last operation: audit it when it succeeded, roll back its commit objects when
        it (or its audit) failed, else finish it."""
        if self.failed(model):
            written = self.written_commits(model)
            if written and not self.settings.dry_run:
                model.phase = Phase.ROLLBACK
                self._queue_remove(model, written)
                return
        elif model.phase is not Phase.AUDIT and not self.settings.dry_run and not model.plan.fresh_target:
            model.audit = expectations([s.result for s in model.ops if s.result is not None])
            if model.audit:
                model.phase = Phase.AUDIT
                self._queue_audit(model)
                return
        self._finish(model)

    # ---- the audit ---------------------------------------------------------------------------------

    def _queue_audit(self, model: ModelState) -> None:
        root = model.plan.target_root
        keys = frozenset(e.location.key for e in model.audit if inside(e.location, root))
        others = tuple(e.location for e in model.audit if not inside(e.location, root))
        model.ready.append((AuditTask(self.dispatch.new_id(), model.index, root, keys, others), 0))

    def on_audit(self, task: AuditTask, report: Report) -> None:
        model = self.models[task.model]
        if isinstance(report, AuditDone):
            model.failure = audit(model.audit, dict(report.found))
        else:
            error, _ = _failure(report)
            model.audit_attempts += 1
            if self._again(model.audit_attempts, report, lambda: self._queue_audit(model)):
                return
            model.failure = (
                f"{error.rstrip('.')}; the upload under {model.plan.target_root.url} could not be checked, "
                f"run the command again."
            )
        self._conclude(model)

    # ---- retries -----------------------------------------------------------------------------------

    def _again(self, attempts: int, report: Report, action: Callable[[], None]) -> bool:
        """Schedule ``action`` when a failed prepare, remove or audit may be tried again: through an outage
        of its endpoint until the stall deadline, after other retryable failures ``max_attempts`` times."""
        _, retryable = _failure(report)
        if not retryable:
            return False
        if isinstance(report, TaskFailed) and report.reason and report.endpoint:
            failing = self.dispatch.health.failed(report.endpoint, report.reason)
            if time.monotonic() - failing.since >= self.settings.stall_deadline:
                return False
            self.dispatch.health.retry(report.endpoint, action)
            return True
        if attempts < self.settings.max_attempts:
            self.dispatch.later(self.dispatch.backoff(attempts), action)
            return True
        return False

    # ---- the end -----------------------------------------------------------------------------------

    def failed(self, model: ModelState) -> bool:
        return model.failure is not None or any(s.result is not None and s.result.status == "failed" for s in model.ops)

    def _finish(self, model: ModelState) -> None:
        model.phase = Phase.DONE
        for state in model.ops:
            if state.result is None:
                error = "Not run: another operation of the model failed."
                state.result = OperationResult(state.op, "not-run", error=error)
        model.result = self.result(model)
        self.notify("on_model_done", model.result)

    def result(self, model: ModelState) -> ModelResult:
        results = [s.result or OperationResult(s.op, "not-run") for s in model.ops]
        failed = [r for r in results if r.status == "failed"]
        status = "failed" if failed or model.failure else ("dry-run" if self.settings.dry_run else "ok")
        return ModelResult(
            model_id=model.plan.model_id,
            status=status,  # type: ignore[arg-type]
            operations=results,
            bytes=sum(r.bytes for r in results),
            skipped=sum(1 for r in results if r.status == "skipped"),
            seconds=time.monotonic() - (self.started if model.began is None else model.began),
            error=failed[0].error if failed else model.failure,
        )


def _failure(report: Report) -> tuple[str, bool]:
    """The error sentence of a failed task's report, and whether trying again may help."""
    error: str = getattr(report, "error", "") or ""
    return error, bool(getattr(report, "retryable", False)) and error != "cancelled"
