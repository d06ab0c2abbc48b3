"""The parent's scheduler: per-model state, part fan-out, verification, retries, commit order, clean-up.

Flow per run: (1) a PrepareTask per model sweeps unfinished multipart uploads under its target root
and lists the targets (all prepares finish before any upload starts, so a sweep never aborts one of
ours); (2) operations start as OpTasks, models served round-robin so one large model never holds the
others back; a large object comes back as OpMultipart and its parts go out as PartTasks; when every
part is in, the scheduler checks the combined checksum and sends a CompleteTask (or aborts and retries);
(3) when all other operations of a model succeeded its commit operations run, one at a time, in order;
(4) an AuditTask lists the target root once and the model is ``ok`` only when every object it wrote or
skipped is there with the size and ETag the engine saw, and every object it deleted is gone.
Tasks in flight are bounded in number and in buffered bytes (~ processes x concurrency x part size).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import itertools
import logging
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine.audit import Expectation, audit, expectations
from drtransfer.engine.checksums import (
    clean_etag,
    combine_crcs,
    crc_to_b64,
    is_plain_md5,
    multipart_count,
    multipart_etag,
)
from drtransfer.engine.housekeeping import abort_upload, remove_object, sweep_uploads
from drtransfer.engine.messages import (
    AbortDone,
    AbortTask,
    AuditDone,
    AuditTask,
    ClientRetried,
    CompleteDone,
    CompleteTask,
    OpDone,
    OpMultipart,
    OpTask,
    PartDone,
    PartSpec,
    PartTask,
    PrepareDone,
    PrepareTask,
    ProbeDone,
    ProbeTask,
    Progress,
    RemoveDone,
    RemoveTask,
    Report,
    TargetState,
    Task,
    TaskFailed,
    UploadRef,
    UploadStarted,
    Verify,
)
from drtransfer.engine.pool import Pool
from drtransfer.engine.runtime import Runtime, TaskError
from drtransfer.engine.settings import MAX_SINGLE_COPY, EngineSettings
from drtransfer.engine.strategy import SEQUENTIAL_PARTS_IN_FLIGHT
from drtransfer.errors import ConfigError, Interrupted, TransferError
from drtransfer.operations import (
    CopyObject,
    DeleteObject,
    ModelPlan,
    ModelResult,
    ObjectLocation,
    Operation,
    OperationResult,
    OperationStatus,
    PutBytes,
)

log = logging.getLogger("drtransfer.engine")


class _Terminated(BaseException):
    """SIGTERM arrived while the engine ran."""


@dataclass
class OpState:
    model: int
    index: int
    op: Operation
    attempt: int = 0
    generation: int = 0
    force_stream: bool = False
    counted: int = 0
    upload: UploadRef | None = None
    parts: dict[int, PartSpec] = field(default_factory=dict)
    part_attempts: dict[int, int] = field(default_factory=dict)
    done_parts: dict[int, PartDone] = field(default_factory=dict)
    verify: Verify | None = None
    copy: bool = False
    crc: str | None = None
    strategy: str = ""
    result: OperationResult | None = None


@dataclass
class ModelState:
    index: int
    plan: ModelPlan
    ops: list[OpState]
    pending: deque[int]
    commit: list[int]
    ready: deque[tuple[Task, int]] = field(default_factory=deque)  # (task, buffered bytes)
    listing: dict[str, TargetState] | None = None
    # prepare -> [clear] -> run -> commit -> [audit] -> [rollback] -> done; "clear" removes the commit
    # objects of an earlier, different upload before anything is written, "audit" checks the target once
    # everything ran, "rollback" removes the commit objects written when an operation or the audit
    # failed: a target never holds commit objects without everything they commit.
    phase: str = "prepare"
    active: int = 0  # operations started and not finished
    commit_next: int = 0
    remove_attempts: int = 0
    audit: list[Expectation] = field(default_factory=list)
    audit_attempts: int = 0
    failure: str | None = None  # why the model failed when no operation did (clearing or the audit failed)
    result: ModelResult | None = None


@dataclass
class Inflight:
    task: Task
    mem: int
    model: int
    op: int
    generation: int


class Scheduler:
    def __init__(
        self,
        plans: Sequence[ModelPlan],
        endpoints: Mapping[str, Endpoint],
        settings: EngineSettings,
        subscribers: Sequence[Any],
    ) -> None:
        self.plans = list(plans)
        self.endpoints = dict(endpoints)
        self.settings = settings
        self.subscribers = list(subscribers)
        self.ids = itertools.count(1)
        self.models = [self._model_state(i, plan) for i, plan in enumerate(self.plans)]
        self.control: deque[tuple[Task, int]] = deque()  # probes and aborts: before anything else
        self.inflight: dict[int, Inflight] = {}
        self.inflight_mem = 0
        self.max_tasks = settings.threads * 2
        self.mem_budget = settings.threads * settings.part_size
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.open_uploads: dict[str, UploadRef] = {}
        self.probes: dict[tuple[str, str], bool | None] = {}  # None: running
        self.probe_waiters: dict[tuple[str, str], list[OpState]] = {}
        self.prepares_left = len(self.models)
        self.pending_removals: list[ObjectLocation] = []  # commit objects a rollback could not delete yet
        self.prepare_attempts: dict[int, int] = {}
        self.rr = 0
        self.worker_deaths = 0
        self.started = time.monotonic()
        self.pool = Pool(self.endpoints, settings)

    # ---- set-up ------------------------------------------------------------------------------

    def _model_state(self, index: int, plan: ModelPlan) -> ModelState:
        ops = [OpState(index, n, op) for n, op in enumerate(plan.operations)]
        for op in plan.operations:
            for location in [*_locations(op), plan.target_root]:
                if location.endpoint not in self.endpoints:
                    raise ConfigError(
                        f"Model {plan.model_id} uses an endpoint named {location.endpoint!r} that is not "
                        f"configured; define it or fix the plan."
                    )
        regular = deque(n for n, op in enumerate(plan.operations) if not op.commit)
        commit = [n for n, op in enumerate(plan.operations) if op.commit]
        return ModelState(index, plan, ops, regular, commit)

    # ---- subscribers -------------------------------------------------------------------------

    def notify(self, method: str, *args: Any) -> None:
        for subscriber in self.subscribers:
            try:
                getattr(subscriber, method)(*args)
            except Exception:  # a subscriber must never break a transfer
                log.exception("transfer subscriber %r failed in %s", subscriber, method)

    # ---- main loop ---------------------------------------------------------------------------

    def run(self) -> list[ModelResult]:
        self.notify("on_start", self.plans)
        previous = self._install_sigterm()
        interrupted = False
        try:
            self.pool.start()
            for model in self.models:
                self._queue_prepare(model)
            if not self.models:
                self.prepares_left = 0
            self._loop()
        except (KeyboardInterrupt, _Terminated):
            interrupted = True
        finally:
            self._shutdown(interrupted)
            self._restore_sigterm(previous)
        if interrupted:
            raise Interrupted()
        return [m.result or self._finish_model_result(m) for m in self.models]

    def _loop(self) -> None:
        last_health = time.monotonic()
        while not self._all_done():
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()
            self._dispatch()
            wait = 0.2
            if self.timers:
                wait = max(0.0, min(wait, self.timers[0][0] - now))
            report = self.pool.get(wait)
            while report is not None:
                self._handle(report)
                report = self.pool.get(0)
            if now - last_health > 1.0:
                last_health = now
                died = self.pool.replace_dead()
                if died:
                    self.worker_deaths += died
                    if self.worker_deaths > 2 * max(1, self.settings.processes):
                        raise TransferError(
                            "Worker processes keep dying (see the messages above); with the spawn or forkserver "
                            "start method, the main script must guard its code with if __name__ == '__main__'."
                        )
                    self._fail_all_inflight("A worker process died; the task is retried.")

    def _all_done(self) -> bool:
        return (
            all(m.phase == "done" for m in self.models) and not self.inflight and not self.control and not self.timers
        )

    # ---- dispatch ----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while len(self.inflight) < self.max_tasks:
            item = self._next_item()
            if item is None:
                return
            task, mem = item
            if self.inflight_mem and self.inflight_mem + mem > self.mem_budget:
                self._push_back(task, mem)
                return
            self._submit(task, mem)

    def _push_back(self, task: Task, mem: int) -> None:
        model = getattr(task, "model", -1)
        if isinstance(task, ProbeTask | AbortTask) or model < 0:
            self.control.appendleft((task, mem))
        else:
            self.models[model].ready.appendleft((task, mem))

    def _submit(self, task: Task, mem: int) -> None:
        model = getattr(task, "model", -1)
        op_index = getattr(task, "op_index", -1)
        generation = self.models[model].ops[op_index].generation if model >= 0 and op_index >= 0 else 0
        self.inflight[task.task_id] = Inflight(task, mem, model, op_index, generation)
        self.inflight_mem += mem
        self.pool.submit(task)

    def _next_item(self) -> tuple[Task, int] | None:
        if self.control:
            return self.control.popleft()
        count = len(self.models)
        for step in range(count):
            model = self.models[(self.rr + step) % count]
            item = self._model_item(model)
            if item is not None:
                self.rr = (self.rr + step + 1) % count
                return item
        return None

    def _model_item(self, model: ModelState) -> tuple[Task, int] | None:
        if model.ready:
            return model.ready.popleft()
        if self.prepares_left:
            return None
        if model.phase == "run":
            while model.pending:
                state = model.ops[model.pending.popleft()]
                item = self._start_op(model, state)
                if item is not None:
                    return item
        elif model.phase == "commit" and model.active == 0 and model.commit_next < len(model.commit):
            state = model.ops[model.commit[model.commit_next]]
            model.commit_next += 1
            return self._start_op(model, state)
        return None

    def _start_op(self, model: ModelState, state: OpState) -> tuple[Task, int] | None:
        """Begin an operation (its first attempt); None when it finished or waits without a task."""
        model.active += 1
        op = state.op
        root = model.plan.target_root
        if isinstance(op, DeleteObject) and not (root.key.strip("/") and _inside(op.target, root)):
            why = f"it is outside the model's target {root.url}"
            if not root.key.strip("/"):  # never delete across a whole bucket
                why = f"the model's target is the whole bucket s3://{root.bucket}/"
            self._finish_op(state, "failed", error=f"Refusing to delete {op.target.url}: {why}.")
            return None
        key = self._probe_key(op)
        if key is not None and not self.settings.dry_run:
            known = self.probes.get(key, "absent")
            if known is None or known == "absent":
                self.probe_waiters.setdefault(key, []).append(state)
                if known == "absent":
                    self.probes[key] = None
                    task = ProbeTask(next(self.ids), key[0], key[1], root.key)
                    self.control.append((task, 0))
                return None
        state.attempt += 1
        return self._op_task(model, state)

    def _op_task(self, model: ModelState, state: OpState) -> tuple[Task, int]:
        op = state.op
        key = self._probe_key(op)
        probe_ok = self.probes.get(key) if key else None
        listing = model.listing
        target = listing.get(op.target.key) if listing is not None else None
        task = OpTask(
            next(self.ids),
            model.index,
            state.index,
            op,
            model.plan.target_root,
            target,
            listing is not None and state.attempt == 1,
            probe_ok if isinstance(probe_ok, bool) else None,
            state.force_stream,
            self.settings.dry_run,
        )
        return task, self._op_mem(op)

    def _probe_key(self, op: Operation) -> tuple[str, str] | None:
        if not isinstance(op, CopyObject):
            return None
        source, target = self.endpoints[op.source.location.endpoint], self.endpoints[op.target.endpoint]
        if not source.same_store(target) or op.size <= min(self.settings.copy_threshold, MAX_SINGLE_COPY):
            return None
        return (op.target.endpoint, op.target.bucket)

    def _op_mem(self, op: Operation) -> int:
        if isinstance(op, PutBytes):
            return len(op.body)
        if isinstance(op, DeleteObject):
            return 0
        if self._probe_key(op) is not None or (
            self.endpoints[op.source.location.endpoint].same_store(self.endpoints[op.target.endpoint])
            and op.size <= min(self.settings.copy_threshold, MAX_SINGLE_COPY)
        ):
            return 0
        if op.size <= self.settings.multipart_threshold:
            return op.size
        return (SEQUENTIAL_PARTS_IN_FLIGHT + 1) * self.settings.part_size  # a sequential stream at most

    def _queue_prepare(self, model: ModelState) -> None:
        keys = frozenset(op.target.key for op in model.plan.operations)
        task = PrepareTask(
            next(self.ids),
            model.index,
            model.plan.target_root,
            keys,
            self.settings.dry_run,
            fresh=model.plan.fresh_target,
        )
        model.ready.append((task, 0))

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.ids), action))

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.retry_max_delay, self.settings.retry_base_delay * 2 ** max(0, attempt - 1))
        return float(base * random.uniform(0.5, 1.0))

    # ---- reports -----------------------------------------------------------------------------

    def _handle(self, report: Report) -> None:
        if isinstance(report, Progress):
            if report.model >= 0:
                state = self.models[report.model].ops[report.op_index]
                state.counted += report.delta
                self.notify("on_progress", self.plans[report.model].model_id, report.delta)
            return
        if isinstance(report, ClientRetried):
            state = self.models[report.model].ops[report.op_index]
            for n in range(report.count):  # botocore's attempts 2..n+1 of one request
                reason = f" after {report.reasons[n]}" if n < len(report.reasons) else ""
                error = f"{report.action}: the S3 client sent it again{reason}."
                self.notify("on_retry", self.plans[report.model].model_id, state.op, n + 2, error)
            return
        if isinstance(report, UploadStarted):
            self.open_uploads[report.upload.upload_id] = report.upload
            return
        task_id = getattr(report, "task_id", None)
        if task_id is None:
            return  # WorkerStopped
        entry = self.inflight.pop(task_id, None)
        if entry is None:
            return  # a task we gave up on (dead worker)
        self.inflight_mem -= entry.mem
        task = entry.task
        if isinstance(task, PrepareTask):
            self._on_prepare(task, report)
        elif isinstance(task, ProbeTask):
            self._on_probe(task, report)
        elif isinstance(task, RemoveTask):
            self._on_remove(task, report)
        elif isinstance(task, AuditTask):
            self._on_audit(task, report)
        elif isinstance(task, AbortTask):
            if isinstance(report, AbortDone) and report.ok:
                self.open_uploads.pop(task.upload.upload_id, None)
            elif isinstance(report, TaskFailed | AbortDone):
                log.warning("could not abort an upload yet: %s", report.error)
        else:
            state = self.models[entry.model].ops[entry.op]
            if entry.generation != state.generation or state.result is not None:
                self._stale(report)
                return
            self._on_op_report(state, task, report)

    def _stale(self, report: Report) -> None:
        """A report for an attempt we already gave up on: just keep its upload from lingering."""
        if isinstance(report, OpMultipart):
            self._abort(report.upload)

    def _on_prepare(self, task: PrepareTask, report: Report) -> None:
        model = self.models[task.model]
        if isinstance(report, TaskFailed):
            attempts = self.prepare_attempts.get(task.model, 1)
            if report.retryable and attempts < self.settings.max_attempts and report.error != "cancelled":
                self.prepare_attempts[task.model] = attempts + 1
                self._later(self._backoff(attempts), lambda: self._queue_prepare(model))
                return
            log.warning("%s: %s", model.plan.model_id, report.error)  # ops will HEAD each target instead
        elif isinstance(report, PrepareDone):
            if report.listing is not None:
                model.listing = {key: TargetState(size, etag) for key, size, etag in report.listing}
            if report.note:
                log.warning("%s: %s", model.plan.model_id, report.note)
            if report.swept:
                log.info("%s: aborted %d unfinished upload(s) of an earlier run", model.plan.model_id, report.swept)
        self.prepares_left -= 1
        stale = self._stale_commits(model)
        if stale and not self.settings.dry_run:
            model.phase = "clear"
            self._queue_remove(model, stale)
            return
        self._forget(model, stale)  # a dry run shows them written, as the real run writes them
        model.phase = "run"
        self._check_model(model)

    # ---- commit objects: clear stale ones, roll back partial ones -----------------------------

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

    def _written_commits(self, model: ModelState) -> list[ObjectLocation]:
        done = ("put", "copied", "skipped")
        return [
            model.ops[n].op.target
            for n in model.commit
            if (result := model.ops[n].result) is not None and result.status in done
        ]

    def _forget(self, model: ModelState, targets: Sequence[ObjectLocation]) -> None:
        """Drop removed objects from the model's listing, so no operation skips one as already there."""
        if model.listing is not None:
            for target in targets:
                model.listing.pop(target.key, None)

    def _queue_remove(self, model: ModelState, targets: Sequence[ObjectLocation]) -> None:
        model.ready.append((RemoveTask(next(self.ids), model.index, tuple(targets)), 0))

    def _on_remove(self, task: RemoveTask, report: Report) -> None:
        model = self.models[task.model]
        if isinstance(report, RemoveDone):
            if model.phase == "clear":
                self._forget(model, task.targets)
                model.phase = "run"
                self._check_model(model)
            else:
                self._finish_model(model)
            return
        error = getattr(report, "error", "")
        model.remove_attempts += 1
        retryable = getattr(report, "retryable", False) and error != "cancelled"
        if retryable and model.remove_attempts < self.settings.max_attempts:
            self._later(self._backoff(model.remove_attempts), lambda: self._queue_remove(model, task.targets))
            return
        if model.phase == "clear":
            model.failure = (
                f"{error.rstrip('.')}; the commit objects of an earlier upload under {model.plan.target_root.url} "
                f"could not be removed, so nothing was written."
            )
        else:
            log.warning("%s: could not remove commit objects yet: %s", model.plan.model_id, error)
            self.pending_removals.extend(task.targets)
        self._finish_model(model)

    def _on_probe(self, task: ProbeTask, report: Report) -> None:
        key = (task.endpoint, task.bucket)
        works = isinstance(report, ProbeDone) and report.works
        if not works:
            detail = report.detail if isinstance(report, ProbeDone) else getattr(report, "error", "")
            log.warning(
                "UploadPartCopy does not work on the %s (bucket %s): %s; copying through the client instead.",
                self.endpoints[task.endpoint].describe(),
                task.bucket,
                detail,
            )
        self.probes[key] = works
        for state in self.probe_waiters.pop(key, []):
            model = self.models[state.model]
            state.attempt += 1
            model.ready.append(self._op_task(model, state))

    def _on_op_report(self, state: OpState, task: Task, report: Report) -> None:
        model = self.models[state.model]
        if isinstance(report, TaskFailed):
            if report.error == "cancelled":
                return
            self._rewind(state, report.rewind)
            if isinstance(task, PartTask) and not report.fallback:
                self._part_failed(state, task, report)
            else:
                self._op_failed(state, report.error, report.retryable, report.fallback)
        elif isinstance(report, OpDone):
            self._finish_op(state, report.status, report.bytes, report.strategy, etag=report.etag)
        elif isinstance(report, OpMultipart):
            state.upload, state.verify = report.upload, report.verify
            state.copy, state.crc, state.strategy = report.copy, report.crc, report.strategy
            state.parts = {p.number: p for p in report.parts}
            state.done_parts, state.part_attempts = {}, {}
            for part in report.parts:
                model.ready.append(self._part_task(state, part))
        elif isinstance(report, PartDone):
            state.done_parts[report.number] = report
            if len(state.done_parts) == len(state.parts):
                self._parts_complete(state)
        elif isinstance(report, CompleteDone):
            if state.upload:
                self.open_uploads.pop(state.upload.upload_id, None)
            state.upload = None
            size = state.verify.size if state.verify else 0
            self._finish_op(state, "copied", size, state.strategy, etag=report.etag)

    def _part_task(self, state: OpState, part: PartSpec) -> tuple[Task, int]:
        assert state.upload is not None and isinstance(state.op, CopyObject)
        source = state.op.source.location
        task = PartTask(next(self.ids), state.model, state.index, state.upload, source, part, state.copy, state.crc)
        return task, 0 if state.copy else part.size

    def _part_failed(self, state: OpState, task: PartTask, report: TaskFailed) -> None:
        number = task.part.number
        attempts = state.part_attempts.get(number, 1)
        if report.retryable and attempts < self.settings.max_attempts:
            state.part_attempts[number] = attempts + 1
            model_id = self.plans[state.model].model_id
            self.notify("on_retry", model_id, state.op, attempts + 1, report.error)
            generation = state.generation

            def again() -> None:
                if state.generation == generation and state.result is None:
                    self.models[state.model].ready.appendleft(self._part_task(state, task.part))

            self._later(self._backoff(attempts), again)
            return
        self._op_failed(state, report.error, retryable=False, fallback=False)

    def _parts_complete(self, state: OpState) -> None:
        assert state.verify is not None and state.upload is not None
        problem = self._verify_parts(state)
        if problem:
            self._op_failed(state, problem, retryable=True, fallback=state.copy)
            return
        ordered = [state.done_parts[n] for n in sorted(state.parts)]
        expected_etag = None if state.copy else multipart_etag(p.md5 or b"" for p in ordered)
        task = CompleteTask(
            next(self.ids),
            state.model,
            state.index,
            state.upload,
            tuple((p.number, p.etag) for p in ordered),
            expected_etag,
            tuple(state.parts[n].size for n in sorted(state.parts)) if state.copy else None,
            state.verify.size,
        )
        self.models[state.model].ready.appendleft((task, 0))

    def _verify_parts(self, state: OpState) -> str | None:
        """None when the parts prove the source's checksum, else the sentence saying what is wrong."""
        verify = state.verify
        assert verify is not None and isinstance(state.op, CopyObject)
        ordered = [state.done_parts[n] for n in sorted(state.parts)]
        where = state.op.source.location.url
        if sum(p.size for p in ordered) != verify.size:
            return f"The parts copied from {where} do not add up to its size."
        if verify.kind == "md5-parts":
            got = multipart_etag(p.md5 or b"" for p in ordered)
        elif verify.kind in ("crc32", "crc32c"):
            got = crc_to_b64(combine_crcs(((p.crc or 0, p.size) for p in ordered), verify.kind))
        elif verify.kind == "copy-parts" and verify.expected and all(is_plain_md5(p.etag) for p in ordered):
            # The server reports part MD5s: they must combine to the source's ETag.
            if multipart_count(verify.expected):
                got = multipart_etag(bytes.fromhex(p.etag) for p in ordered)
            else:
                got = ordered[0].etag if len(ordered) == 1 else ""
        else:
            return None  # sizes only (checked with ListParts before completing server-side copies)
        if got != verify.expected:
            return (
                f"Verification of {where} failed: the bytes moved do not match its "
                f"{'ETag' if 'md5' in verify.kind or verify.kind == 'copy-parts' else verify.kind} "
                f"{verify.expected}; the upload was aborted."
            )
        return None

    def _rewind(self, state: OpState, count: int) -> None:
        if count:
            state.counted -= count
            self.notify("on_progress", self.plans[state.model].model_id, -count)

    def _abort(self, upload: UploadRef) -> None:
        task = AbortTask(next(self.ids), -1, -1, upload)
        self.control.append((task, 0))

    def _op_failed(self, state: OpState, error: str, retryable: bool, fallback: bool) -> None:
        if state.upload is not None:
            self._abort(state.upload)
            state.upload = None
        self._rewind(state, state.counted)
        state.generation += 1  # reports still coming for this attempt are stale now
        if retryable and state.attempt < self.settings.max_attempts:
            state.force_stream = state.force_stream or fallback
            self.notify("on_retry", self.plans[state.model].model_id, state.op, state.attempt + 1, error)
            generation = state.generation

            def again() -> None:
                if state.generation == generation and state.result is None:
                    model = self.models[state.model]
                    state.attempt += 1
                    model.ready.append(self._op_task(model, state))

            self._later(self._backoff(state.attempt), again)
            return
        self._finish_op(state, "failed", error=error)

    def _fail_all_inflight(self, sentence: str) -> None:
        for task_id in list(self.inflight):
            self._handle(TaskFailed(task_id, sentence, retryable=True, rewind=0))

    # ---- completion --------------------------------------------------------------------------

    def _finish_op(
        self,
        state: OpState,
        status: OperationStatus,
        nbytes: int = 0,
        strategy: str = "",
        error: str | None = None,
        etag: str = "",
    ) -> None:
        model = self.models[state.model]
        state.result = OperationResult(
            state.op, status, nbytes, strategy or state.strategy, state.attempt, error, etag=etag
        )
        model.active -= 1
        self.notify("on_operation", model.plan.model_id, state.result)
        self._check_model(model)

    def _check_model(self, model: ModelState) -> None:
        if model.phase in ("prepare", "clear", "audit", "rollback", "done") or model.active:
            return
        if model.phase == "run":
            if model.pending or any(s.model == model.index for w in self.probe_waiters.values() for s in w):
                return
            if model.commit and not self._model_failed(model):
                model.phase = "commit"
            else:
                self._conclude(model)
                return
        if model.phase == "commit" and (model.commit_next >= len(model.commit) or self._model_failed(model)):
            self._conclude(model)

    def _conclude(self, model: ModelState) -> None:
        """After a model's last operation: audit it when it succeeded, roll back its commit objects when
        it (or its audit) failed, else finish it."""
        if self._model_failed(model):
            written = self._written_commits(model)
            if written and not self.settings.dry_run:
                model.phase = "rollback"
                self._queue_remove(model, written)
                return
        elif model.phase != "audit" and not self.settings.dry_run and not model.plan.fresh_target:
            model.audit = expectations([s.result for s in model.ops if s.result is not None])
            if model.audit:
                model.phase = "audit"
                self._queue_audit(model)
                return
        self._finish_model(model)

    # ---- the audit ---------------------------------------------------------------------------

    def _queue_audit(self, model: ModelState) -> None:
        root = model.plan.target_root
        keys = frozenset(e.location.key for e in model.audit if _inside(e.location, root))
        others = tuple(e.location for e in model.audit if not _inside(e.location, root))
        model.ready.append((AuditTask(next(self.ids), model.index, root, keys, others), 0))

    def _on_audit(self, task: AuditTask, report: Report) -> None:
        model = self.models[task.model]
        if isinstance(report, AuditDone):
            model.failure = audit(model.audit, dict(report.found))
        else:
            error = getattr(report, "error", "")
            model.audit_attempts += 1
            retryable = getattr(report, "retryable", False) and error != "cancelled"
            if retryable and model.audit_attempts < self.settings.max_attempts:
                self._later(self._backoff(model.audit_attempts), lambda: self._queue_audit(model))
                return
            model.failure = (
                f"{error.rstrip('.')}; the upload under {model.plan.target_root.url} could not be checked, "
                f"run the command again."
            )
        self._conclude(model)

    def _model_failed(self, model: ModelState) -> bool:
        return model.failure is not None or any(s.result is not None and s.result.status == "failed" for s in model.ops)

    def _finish_model(self, model: ModelState) -> None:
        model.phase = "done"
        for state in model.ops:
            if state.result is None:
                error = "Not run: another operation of the model failed."
                state.result = OperationResult(state.op, "not-run", error=error)
        model.result = self._finish_model_result(model)
        self.notify("on_model_done", model.result)

    def _finish_model_result(self, model: ModelState) -> ModelResult:
        results = [s.result or OperationResult(s.op, "not-run") for s in model.ops]
        failed = [r for r in results if r.status == "failed"]
        status = "failed" if failed or model.failure else ("dry-run" if self.settings.dry_run else "ok")
        return ModelResult(
            model_id=model.plan.model_id,
            status=status,  # type: ignore[arg-type]
            operations=results,
            bytes=sum(r.bytes for r in results),
            skipped=sum(1 for r in results if r.status == "skipped"),
            seconds=time.monotonic() - self.started,
            error=failed[0].error if failed else model.failure,
        )

    # ---- shutdown, interrupts and clean-up ---------------------------------------------------

    def _install_sigterm(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_term(signum: int, frame: FrameType | None) -> None:
            raise _Terminated

        return signal.signal(signal.SIGTERM, on_term)

    def _restore_sigterm(self, previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

    def _shutdown(self, interrupted: bool) -> None:
        ignored = self._ignore_signals() if interrupted else {}
        try:
            drained: list[Report] = []
            self.pool.shutdown(cancel=interrupted or not self._all_done(), drain=drained)
            for report in drained:
                if isinstance(report, UploadStarted):
                    self.open_uploads[report.upload.upload_id] = report.upload
                elif isinstance(report, CompleteDone) and report.task_id in self.inflight:
                    entry = self.inflight[report.task_id]
                    task = entry.task
                    if isinstance(task, CompleteTask):
                        self.open_uploads.pop(task.upload.upload_id, None)
            if self.settings.dry_run:
                return
            # After an interrupt every root is swept; after a failure the roots of the failed models, as
            # an upload whose creation answer was lost (server killed) is not in open_uploads.
            roots = [
                m.plan.target_root
                for m in self.models
                if interrupted or (m.result is not None and m.result.status == "failed" and not m.plan.fresh_target)
            ]
            removals = list(self.pending_removals)
            if interrupted:  # commit objects of models interrupted in their commit phase
                removals += [
                    t for m in self.models if m.phase in ("commit", "rollback") for t in self._written_commits(m)
                ]
            if self.open_uploads or roots or removals:
                self._cleanup(list(self.open_uploads.values()), roots, removals)
        finally:
            for signum, handler in ignored.items():
                signal.signal(signum, handler)

    def _ignore_signals(self) -> dict[int, Any]:
        """While cleaning up after an interrupt, a second Ctrl-C must not leave uploads behind."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}

    def _cleanup(
        self, uploads: list[UploadRef], roots: list[ObjectLocation], removals: Sequence[ObjectLocation] = ()
    ) -> None:
        """Abort our uploads (and everything under the given target roots) and delete the commit objects
        of failed or interrupted models, retrying until ``abort_timeout`` so a restarting server still
        gets them."""
        quick = dataclasses.replace(self.settings, client_max_attempts=1, connect_timeout=3.0, read_timeout=15.0)
        runtime = Runtime(self.endpoints, quick, lambda report: None, threading.Event())
        deadline = time.monotonic() + self.settings.abort_timeout
        pending_uploads = list(uploads)
        pending_roots = list(dict.fromkeys(roots))
        pending_removals = list(dict.fromkeys(removals))
        last_error = ""
        while pending_uploads or pending_roots or pending_removals:
            still: list[UploadRef] = []
            for upload in pending_uploads:
                try:
                    abort_upload(runtime, upload)
                    self.open_uploads.pop(upload.upload_id, None)
                except TaskError as error:
                    last_error = error.sentence
                    if error.retryable:
                        still.append(upload)
            still_roots: list[ObjectLocation] = []
            for root in pending_roots:
                try:
                    sweep_uploads(runtime, root, dry_run=False)
                except TaskError as error:
                    if error.retryable and error.code not in ("NoSuchUpload", "NotImplemented"):
                        last_error = error.sentence
                        still_roots.append(root)
            still_removals: list[ObjectLocation] = []
            for target in pending_removals:
                try:
                    remove_object(runtime, target)
                except TaskError as error:
                    last_error = error.sentence
                    if error.retryable:
                        still_removals.append(target)
            pending_uploads, pending_roots, pending_removals = still, still_roots, still_removals
            if not (pending_uploads or pending_roots or pending_removals) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if pending_uploads:
            log.error(
                "%d multipart upload(s) could not be aborted (%s); the next run sweeps them.",
                len(pending_uploads),
                last_error,
            )
        if pending_removals:
            log.error(
                "%d commit object(s) of a failed model could not be deleted (%s): %s; the next run replaces them.",
                len(pending_removals),
                last_error,
                ", ".join(t.url for t in pending_removals),
            )
        with contextlib.suppress(Exception):
            runtime.close()


def _locations(op: Operation) -> list[ObjectLocation]:
    if isinstance(op, CopyObject):
        return [op.source.location, op.target]
    return [op.target]


def _inside(location: ObjectLocation, root: ObjectLocation) -> bool:
    return location.endpoint == root.endpoint and location.bucket == root.bucket and location.key.startswith(root.key)


def run(
    plans: Sequence[ModelPlan],
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    subscribers: Sequence[Any],
) -> list[ModelResult]:
    return Scheduler(plans, endpoints, settings, subscribers).run()
