"""Each operation from its first attempt to its result, on the scheduler's side.

An operation starts as an :class:`~drtransfer.engine.messages.OpTask` (after the UploadPartCopy probe of
its bucket, when its strategy needs one). A multipart one comes back as an ``OpMultipart``: its parts go
out as ``PartTask``\\ s, each retried on its own; when every part is in, the combined checksum is compared
with the source's and a ``CompleteTask`` is sent, or the upload is aborted and the operation tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

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
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.strategy import Strategy, buffered_bytes, choose_strategy
from drtransfer.operations import CopyObject, DeleteObject, Operation, OperationResult, OperationStatus

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
        key = self._probe_key(op)
        if key is not None and not self.settings.dry_run:
            known = self.probes.get(key, "absent")
            if known is None or known == "absent":
                self.probe_waiters.setdefault(key, []).append(state)
                if known == "absent":
                    self.probes[key] = None
                    self.dispatch.urgent(ProbeTask(self.dispatch.new_id(), key[0], key[1], root.key))
                return None
        state.attempt += 1
        return self._op_task(model, state)

    def _probe_key(self, op: Operation) -> ProbeKey | None:
        """The bucket whose UploadPartCopy must be probed before ``op`` runs, if its strategy uses it."""
        if choose_strategy(op, self.endpoints, self.settings) is not Strategy.UPLOAD_PART_COPY:
            return None
        return (op.target.endpoint, op.target.bucket)

    def _op_task(self, model: ModelState, state: OpState) -> Item:
        op = state.op
        key = self._probe_key(op)
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
            listing is not None and state.attempt == 1,
            probe_ok if isinstance(probe_ok, bool) else None,
            state.force_stream,
            self.settings.dry_run,
        )
        # Accounted for the strategy chosen without this attempt's fallback or the probe's answer.
        mem = buffered_bytes(choose_strategy(op, self.endpoints, self.settings), op, self.settings)
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
            state.attempt += 1
            model.ready.append(self._op_task(model, state))

    # ---- reports -------------------------------------------------------------------------------------

    def on_progress(self, report: Progress) -> None:
        if report.model >= 0:
            state = self.models[report.model].ops[report.op_index]
            state.counted += report.delta
            self.notify("on_progress", self._model_id(state), report.delta)

    def on_client_retried(self, report: ClientRetried) -> None:
        state = self.models[report.model].ops[report.op_index]
        for n in range(report.count):  # botocore's attempts 2..n+1 of one request
            reason = f" after {report.reasons[n]}" if n < len(report.reasons) else ""
            error = f"{report.action}: the S3 client sent it again{reason}."
            self.notify("on_retry", self._model_id(state), state.op, n + 2, error)

    def on_report(self, state: OpState, task: Task, report: Report) -> None:
        """A report of the operation's current attempt."""
        model = self.models[state.model]
        if isinstance(report, TaskFailed):
            if report.error == "cancelled":
                return
            self._rewind(state, report.rewind)
            if isinstance(task, PartTask) and not report.fallback:
                self._part_failed(state, task, report)
            else:
                self._failed(state, report.error, report.retryable, report.fallback)
        elif isinstance(report, OpDone):
            self.finish(state, report.status, report.bytes, report.strategy, etag=report.etag)
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

    def _part_failed(self, state: OpState, task: PartTask, report: TaskFailed) -> None:
        number = task.part.number
        attempts = state.part_attempts.get(number, 1)
        if report.retryable and attempts < self.settings.max_attempts:
            state.part_attempts[number] = attempts + 1
            self.notify("on_retry", self._model_id(state), state.op, attempts + 1, report.error)
            generation = state.generation

            def again() -> None:
                if state.generation == generation and state.result is None:
                    self.models[state.model].ready.appendleft(self._part_task(state, task.part))

            self.dispatch.later(self.dispatch.backoff(attempts), again)
            return
        self._failed(state, report.error, retryable=False, fallback=False)

    def _parts_complete(self, state: OpState) -> None:
        assert state.verify is not None and state.upload is not None and isinstance(state.op, CopyObject)
        ordered = [state.done_parts[n] for n in sorted(state.parts)]
        problem = verify_parts(state.verify, ordered, state.op.source.location.url)
        if problem:
            self._failed(state, problem, retryable=True, fallback=state.copy)
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

    def _failed(self, state: OpState, error: str, retryable: bool, fallback: bool) -> None:
        if state.upload is not None:
            self.abort(state.upload)
            state.upload = None
        self._rewind(state, state.counted)
        state.generation += 1  # reports still coming for this attempt are stale now
        if retryable and state.attempt < self.settings.max_attempts:
            state.force_stream = state.force_stream or fallback
            self.notify("on_retry", self._model_id(state), state.op, state.attempt + 1, error)
            generation = state.generation

            def again() -> None:
                if state.generation == generation and state.result is None:
                    model = self.models[state.model]
                    state.attempt += 1
                    model.ready.append(self._op_task(model, state))

            self.dispatch.later(self.dispatch.backoff(state.attempt), again)
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
