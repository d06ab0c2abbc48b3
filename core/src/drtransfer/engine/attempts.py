"""Each operation from its first attempt to its result, on the scheduler's side.

An operation starts as an :class:`~drtransfer.engine.messages.OpTask` (after the UploadPartCopy probe of
its bucket, when its strategy needs one). A multipart one comes back as an ``OpMultipart``: its parts go
out as ``PartTask``\\ s, each retried on its own; when every part is in, the combined checksum is compared
with the source's and a ``CompleteTask`` is sent, or the upload is aborted and the operation tried again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from drtransfer.endpoints import Endpoint
from drtransfer.engine.checksums import combine_crcs, crc_to_b64, is_plain_md5, multipart_count, multipart_etag
from drtransfer.engine.dispatch import Dispatcher, Item
from drtransfer.engine.lifecycle import Lifecycle, ModelState, Notify, OpState, inside
from drtransfer.engine.messages import (
    AbortTask,
    ClientRetried,
    CompleteDone,
    CompleteTask,
    OpDone,
    OpMultipart,
    OpTask,
    PartDone,
    PartSpec,
    PartTask,
    ProbeDone,
    ProbeTask,
    Progress,
    Report,
    Task,
    TaskFailed,
    UploadRef,
    Verify,
)
from drtransfer.engine.outage import Failing, operation_endpoints
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.strategy import Strategy, buffered_bytes, choose_strategy
from drtransfer.operations import CopyObject, DeleteObject, OperationResult, OperationStatus

log = logging.getLogger("drtransfer.engine")
ProbeKey = tuple[str, str]  # (endpoint, bucket)


class Attempts:
    """Starts operations, fans out their parts, verifies and completes them, retries them."""

    def __init__(
        self,
        models: Sequence[ModelState],
        endpoints: Mapping[str, Endpoint],
        settings: EngineSettings,
        dispatch: Dispatcher,
        lifecycle: Lifecycle,
        notify: Notify,
        open_uploads: dict[str, UploadRef],
    ) -> None:
        self.models = models
        self.endpoints = endpoints
        self.settings = settings
        self.dispatch = dispatch
        self.lifecycle = lifecycle
        self.notify = notify
        self.open_uploads = open_uploads  # upload id -> upload: what an interrupt must abort
        self.probes: dict[ProbeKey, bool | None] = {}  # None: running
        self.probe_waiters: dict[ProbeKey, list[OpState]] = {}

    def _model_id(self, state: OpState) -> str:
        return self.models[state.model].plan.model_id

    # ---- start ---------------------------------------------------------------------------------------

    def start(self, model: ModelState, state: OpState) -> Item | None:
        """Begin an operation (its first attempt); None when it finished or waits without a task."""
        model.active += 1
        op = state.op
        root = model.plan.target_root
        if isinstance(op, DeleteObject) and not (root.key.strip("/") and inside(op.target, root)):
            why = f"it is outside the model's target {root.url}"
            if not root.key.strip("/"):  # never delete across a whole bucket
                why = f"the model's target is the whole bucket s3://{root.bucket}/"
            self.finish(state, "failed", error=f"Refusing to delete {op.target.url}: {why}.")
            return None
        key = self._probe_key(state)
        if key is not None and not self.settings.dry_run:
            known = self.probes.get(key, "absent")
            if known is None or known == "absent":
                self.probe_waiters.setdefault(key, []).append(state)
                if known == "absent":
                    self.probes[key] = None
                    self.dispatch.urgent(ProbeTask(self.dispatch.new_id(), key[0], key[1], root.key))
                return None
        return self._begin(model, state)

    def _begin(self, model: ModelState, state: OpState) -> Item | None:
        """The operation's first attempt, or None: held back while one of its endpoints is failing (woken
        by the first success there), failed when that has lasted past the stall deadline."""
        failing = self.dispatch.health.since(operation_endpoints(state.op))
        now = time.monotonic()
        if failing is None:
            state.progress_at = now
            state.attempt += 1
            return self._op_task(model, state)
        state.progress_at = failing.since  # it has been waiting as long as its endpoint
        if now - failing.since >= self.settings.stall_deadline:
            self.finish(state, "failed", error=self._stalled(failing))
            return None

        def go() -> None:
            if state.result is None and (item := self._begin(model, state)) is not None:
                model.ready.append(item)

        self.dispatch.health.hold(operation_endpoints(state.op), go)
        return None

    def _stalled(self, failing: Failing) -> str:
        """The one sentence of an operation given up on after the stall deadline."""
        where = self.endpoints[failing.name].describe()
        return f"No progress for {self.settings.stall_deadline:g} s: {where}: {failing.reason}."

    def _url(self, name: str) -> str:
        endpoint = self.endpoints[name]
        return endpoint.url or f"https://s3.{endpoint.region}.amazonaws.com"

    def _planned(self, state: OpState) -> Strategy:
        """The strategy of the operation before any fallback or probe answer (chosen once per operation)."""
        if state.planned is None:
            state.planned = choose_strategy(state.op, self.endpoints, self.settings)
        return state.planned

    def _probe_key(self, state: OpState) -> ProbeKey | None:
        """The bucket whose UploadPartCopy must be probed before the operation runs, if its strategy uses it."""
        if self._planned(state) is not Strategy.UPLOAD_PART_COPY:
            return None
        return (state.op.target.endpoint, state.op.target.bucket)

    def _op_task(self, model: ModelState, state: OpState) -> Item:
        op = state.op
        key = self._probe_key(state)
        probe_ok = self.probes.get(key) if key else None
        listing = model.listing
        target = listing.get(op.target.key) if listing is not None else None
        task = OpTask(
            self.dispatch.new_id(),
            model.index,
            state.index,
            op,
            model.plan.target_root,
            target,
            # Later attempts ask the target what the last one left, unless it is a fresh root: nothing
            # else can be there, and it may be write-only (DRoA's upload bucket refuses HEAD).
            listing is not None and (state.attempt == 1 or model.plan.fresh_target),
            probe_ok if isinstance(probe_ok, bool) else None,
            state.force_stream,
            self.settings.dry_run,
        )
        # Accounted for the strategy chosen without this attempt's fallback or the probe's answer.
        mem = buffered_bytes(self._planned(state), op, self.settings)
        return task, mem

    def on_probe(self, task: ProbeTask, report: Report) -> None:
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
            state.progress_at = time.monotonic()
            state.attempt += 1
            model.ready.append(self._op_task(model, state))

    # ---- reports -------------------------------------------------------------------------------------

    def on_progress(self, report: Progress) -> None:
        if report.model >= 0:
            state = self.models[report.model].ops[report.op_index]
            state.counted += report.delta
            if self.dispatch.health.since(operation_endpoints(state.op)) is None:
                # bytes read again while an endpoint is failing (a part's GET before its PUT is refused)
                # would be rewound: only bytes moved while every endpoint answers are progress
                state.progress_at = time.monotonic()
            self.notify("on_progress", self._model_id(state), report.delta)

    def on_client_retried(self, report: ClientRetried) -> None:
        state = self.models[report.model].ops[report.op_index]
        url = self._url(report.endpoint or state.op.target.endpoint)
        for n in range(report.count):  # botocore's attempts 2..n+1 of one request (already made: no delay)
            reason = f" after {report.reasons[n]}" if n < len(report.reasons) else ""
            error = f"{report.action}: the S3 client sent it again{reason}."
            self.notify("on_retry", self._model_id(state), state.op, n + 2, error, delay=0.0, endpoint=url)

    def on_report(self, state: OpState, task: Task, report: Report) -> None:
        """A report of the operation's current attempt."""
        model = self.models[state.model]
        if isinstance(report, TaskFailed):
            if report.error == "cancelled":
                return
            self._rewind(state, report.rewind)
            alone = not report.fallback if isinstance(task, PartTask) else bool(report.reason)
            if isinstance(task, PartTask | CompleteTask) and alone:
                self._part_failed(state, task, report)  # the upload and its other parts stay
            else:
                self._failed(state, report)
        elif isinstance(report, OpDone):
            if report.completed is not None:  # nothing left for the end of the run to abort
                self.open_uploads.pop(report.completed.upload_id, None)
            self.finish(state, report.status, report.bytes, report.strategy, etag=report.etag)
        elif isinstance(report, OpMultipart):
            state.upload, state.verify = report.upload, report.verify
            state.progress_at = time.monotonic()
            state.copy, state.crc, state.strategy = report.copy, report.crc, report.strategy
            state.parts = {p.number: p for p in report.parts}
            state.done_parts, state.part_attempts = {}, {}
            state.waits = {-1: state.waits.get(-1, 0)}  # the parts' waits start again with their counts
            for part in report.parts:
                model.ready.append(self._part_task(state, part))
        elif isinstance(report, PartDone):
            state.progress_at = time.monotonic()
            state.done_parts[report.number] = report
            if len(state.done_parts) == len(state.parts):
                self._parts_complete(state)
        elif isinstance(report, CompleteDone):
            if state.upload:
                self.open_uploads.pop(state.upload.upload_id, None)
            state.upload = None
            size = state.verify.size if state.verify else 0
            self.finish(state, "copied", size, state.strategy, etag=report.etag)

    def on_stale(self, report: Report) -> None:
        """A report for an attempt already given up on: just keep its upload from lingering."""
        if isinstance(report, OpMultipart):
            self.abort(report.upload)

    # ---- parts ---------------------------------------------------------------------------------------

    def _part_task(self, state: OpState, part: PartSpec) -> Item:
        assert state.upload is not None and isinstance(state.op, CopyObject)
        source = state.op.source.location
        task = PartTask(
            self.dispatch.new_id(), state.model, state.index, state.upload, source, part, state.copy, state.crc
        )
        return task, 0 if state.copy else part.size

    def _part_failed(self, state: OpState, task: PartTask | CompleteTask, report: TaskFailed) -> None:
        """A part (or the Complete, when its endpoint is down) is tried again on its own."""
        number = task.part.number if isinstance(task, PartTask) else 0
        attempts = state.part_attempts.get(number, 1)
        generation = state.generation

        def again() -> None:
            if state.generation == generation and state.result is None:
                if isinstance(task, PartTask):
                    item = self._part_task(state, task.part)
                else:
                    item = (dataclasses.replace(task, task_id=self.dispatch.new_id()), 0)
                self.models[state.model].ready.appendleft(item)

        error = self._try_again(state, attempts, report, again, number)
        if error is None:
            state.part_attempts[number] = attempts + 1
            return
        self._failed(state, TaskFailed(report.task_id, error, retryable=False, rewind=0))

    def _parts_complete(self, state: OpState) -> None:
        assert state.verify is not None and state.upload is not None and isinstance(state.op, CopyObject)
        ordered = [state.done_parts[n] for n in sorted(state.parts)]
        problem = verify_parts(state.verify, ordered, state.op.source.location.url)
        if problem:
            self._failed(state, TaskFailed(0, problem, retryable=True, rewind=0, fallback=state.copy))
            return
        expected_etag = None if state.copy else multipart_etag(p.md5 or b"" for p in ordered)
        task = CompleteTask(
            self.dispatch.new_id(),
            state.model,
            state.index,
            state.upload,
            tuple((p.number, p.etag) for p in ordered),
            expected_etag,
            tuple(state.parts[n].size for n in sorted(state.parts)) if state.copy else None,
            state.verify.size,
        )
        self.models[state.model].ready.appendleft((task, 0))

    # ---- failure and the end -------------------------------------------------------------------------

    def _rewind(self, state: OpState, count: int) -> None:
        if count:
            state.counted -= count
            self.notify("on_progress", self._model_id(state), -count)

    def abort(self, upload: UploadRef) -> None:
        self.dispatch.urgent(AbortTask(self.dispatch.new_id(), -1, -1, upload))

    def _try_again(
        self, state: OpState, attempt: int, report: TaskFailed, again: Callable[[], None], part: int
    ) -> str | None:
        """Schedule ``again`` (attempt ``attempt + 1``) and tell the subscribers, or return the sentence the
        operation fails with. An outage (``report.reason``) is waited out until the operation has gone
        ``stall_deadline`` seconds without progress; other retryable failures get ``max_attempts`` (the
        waits of ``part``, -1 for the operation itself, do not count)."""
        if not report.retryable:
            return report.error
        if report.reason and report.endpoint:
            failing = self.dispatch.health.failed(report.endpoint, report.reason)
            if time.monotonic() - state.progress_at >= self.settings.stall_deadline:
                return self._stalled(failing)
            delay = self.dispatch.health.retry(report.endpoint, again)
            error, endpoint = report.reason, report.endpoint
            state.waits[part] = state.waits.get(part, 0) + 1
        elif attempt - state.waits.get(part, 0) < self.settings.max_attempts:
            delay = self.dispatch.backoff(attempt)
            self.dispatch.later(delay, again)
            error, endpoint = report.error, report.endpoint or state.op.target.endpoint
        else:
            return report.error
        url = self._url(endpoint)
        self.notify("on_retry", self._model_id(state), state.op, attempt + 1, error, delay=delay, endpoint=url)
        return None

    def _failed(self, state: OpState, report: TaskFailed) -> None:
        """The operation's attempt failed: its upload is aborted, and it starts again or fails."""
        if state.upload is not None:
            self.abort(state.upload)
            state.upload = None
        self._rewind(state, state.counted)
        state.generation += 1  # reports still coming for this attempt are stale now
        generation = state.generation

        def again() -> None:
            if state.generation == generation and state.result is None:
                model = self.models[state.model]
                state.attempt += 1
                model.ready.append(self._op_task(model, state))

        error = self._try_again(state, state.attempt, report, again, -1)
        if error is None:
            state.force_stream = state.force_stream or report.fallback
            return
        self.finish(state, "failed", error=error)

    def finish(
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
        self.lifecycle.check(model)


def verify_parts(verify: Verify, ordered: Sequence[PartDone], where: str) -> str | None:
    """None when the parts (in order) prove the source's checksum, else the sentence saying what is wrong."""
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
