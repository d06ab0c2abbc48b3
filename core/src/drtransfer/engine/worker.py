"""What a worker does with each task: route it to the module that does it, and report the outcome.

:func:`run_task` is the only entry point; it never raises: every failure becomes a
:class:`~drtransfer.engine.messages.TaskFailed` with one sentence and no secret. The start of an operation
(an :class:`~drtransfer.engine.messages.OpTask`) lives here too: the resume check, then the strategy
:func:`~drtransfer.engine.strategy.choose_strategy` names.
"""

from __future__ import annotations

import dataclasses
import hashlib

from drtransfer.engine import housekeeping, lean, multipart, server_copy, streaming
from drtransfer.engine.checksums import clean_etag, content_md5, source_etag_from_metadata
from drtransfer.engine.messages import (
    AbortTask,
    AuditTask,
    CompleteTask,
    OpDone,
    OpTask,
    PartTask,
    PrepareTask,
    RemoveTask,
    Report,
    TargetState,
    Task,
    TaskFailed,
)
from drtransfer.engine.runtime import Cancelled, Meter, Runtime, TaskError
from drtransfer.engine.strategy import Strategy, choose_strategy
from drtransfer.operations import CopyObject, DeleteObject, PutBytes

# What a dry run reports for a same-store copy above copy_threshold (no probe runs in a dry run).
DRY_RUN_PART_COPY = "upload-part-copy (if the probe passes, else stream)"


def run_task(rt: Runtime, task: Task) -> None:
    """Run ``task`` on this thread and emit its report (or a :class:`TaskFailed`)."""
    model = getattr(task, "model", -1)
    meter = Meter(rt.emit, model, getattr(task, "op_index", -1))
    rt.working_on((model, getattr(task, "op_index", -1)))
    try:
        report = _route(rt, task, meter)
        if isinstance(report, OpDone) and model >= 0:
            report = dataclasses.replace(report, progress=report.progress + meter.take())
        else:
            meter.flush()
        rt.emit(report)
    except Cancelled:
        meter.flush()
        rt.emit(TaskFailed(task.task_id, "cancelled", retryable=False, rewind=meter.total))
    except TaskError as error:
        meter.flush()
        rt.emit(
            TaskFailed(
                task.task_id, error.sentence, error.retryable, meter.total, error.fallback, error.reason, error.endpoint
            )
        )
    except Exception as error:  # a bug or an unexpected library error: report, never kill the worker
        meter.flush()
        sentence = f"Unexpected error: {type(error).__name__}: {error}."
        rt.emit(TaskFailed(task.task_id, sentence, retryable=True, rewind=meter.total))
    finally:
        rt.working_on(None)


def _route(rt: Runtime, task: Task, meter: Meter) -> Report:
    if isinstance(task, PartTask):
        return server_copy.copy_part(rt, task, meter) if task.copy else streaming.stream_part(rt, task, meter)
    if isinstance(task, OpTask):
        return start_operation(rt, task, meter)
    if isinstance(task, CompleteTask):
        return multipart.complete(rt, task)
    if isinstance(task, AbortTask):
        return housekeeping.abort(rt, task)
    if isinstance(task, RemoveTask):
        return housekeeping.remove(rt, task)
    if isinstance(task, PrepareTask):
        return housekeeping.prepare(rt, task)
    if isinstance(task, AuditTask):
        return housekeeping.audit_listing(rt, task)
    return server_copy.probe(rt, task)


# ---- the start of an operation ---------------------------------------------------------------------


def start_operation(rt: Runtime, task: OpTask, meter: Meter) -> Report:
    """Skip what is already at the target, else run the operation's strategy (or, for a multipart one,
    create its upload and hand its parts to the scheduler)."""
    op = task.op
    if isinstance(op, PutBytes):
        return put_bytes(rt, task, op, meter)
    if isinstance(op, DeleteObject):
        if task.dry_run:
            return OpDone(task.task_id, "dry-run", 0, Strategy.DELETE.value)
        target = op.target
        rt.call(target.endpoint, target.bucket, f"delete {target.url}", "delete_object", Key=target.key)
        return OpDone(task.task_id, "deleted", 0, Strategy.DELETE.value)
    return copy(rt, task, op, meter)


def target_state(rt: Runtime, task: OpTask) -> TargetState | None:
    if task.target_known:
        return task.target
    head = rt.head_target(task.op.target)
    return TargetState(int(head["ContentLength"]), clean_etag(head.get("ETag"))) if head else None


def put_bytes(rt: Runtime, task: OpTask, op: PutBytes, meter: Meter) -> Report:
    digest = hashlib.md5(op.body).digest()
    target = op.target
    state = target_state(rt, task)
    if state and state.size == len(op.body) and state.etag == digest.hex():
        return OpDone(task.task_id, "skipped", 0, "skip", state.etag)
    if task.dry_run:
        return OpDone(task.task_id, "dry-run", 0, Strategy.PUT.value)
    rt.pace(len(op.body))  # --bandwidth-limit: the body is in memory already, its PUT waits for its turn
    etag: str | None = None
    path = rt.lean(target.endpoint)
    if path is not None:
        headers = {"Content-MD5": content_md5(digest), "Content-Type": op.content_type}
        with lean.falling_back(meter):  # a redirect: botocore follows it
            etag = lean.put_bytes(path, target, op.body, headers, meter)
    if etag is None:
        answer = rt.call(
            target.endpoint, target.bucket, f"write {target.url}", "put_object", Key=target.key, Body=op.body,
            ContentMD5=content_md5(digest), ContentType=op.content_type,
        )  # fmt: skip
        etag = answer.get("ETag")
    rt.check_written(target, etag, digest.hex())
    meter.add(len(op.body))
    return OpDone(task.task_id, "put", len(op.body), Strategy.PUT.value, clean_etag(etag))


def already_there(rt: Runtime, task: OpTask, op: CopyObject) -> TargetState | None:
    """What is at the target when it already holds the source's bytes, else None."""
    state = target_state(rt, task)
    source_etag = clean_etag(op.source.etag)
    if state is None or state.size != op.source.size:
        return None
    if state.etag == source_etag:
        return state
    head = rt.head_target(op.target)  # the ETag may legitimately differ: look for our metadata
    if head is None or source_etag_from_metadata(head.get("Metadata")) != source_etag:
        return None
    return TargetState(int(head["ContentLength"]), clean_etag(head.get("ETag")))


def copy(rt: Runtime, task: OpTask, op: CopyObject, meter: Meter) -> Report:
    there = already_there(rt, task, op)
    if there is not None:
        return OpDone(task.task_id, "skipped", 0, "skip", there.etag)
    strategy = choose_strategy(
        op, rt.endpoints, rt.settings, server_copy=not task.force_stream, part_copy_works=task.probe_ok
    )
    if task.dry_run:
        label = DRY_RUN_PART_COPY if strategy is Strategy.UPLOAD_PART_COPY else strategy.value
        return OpDone(task.task_id, "dry-run", 0, label)
    if strategy is Strategy.COPY_OBJECT:
        return server_copy.copy_object(rt, task, op, meter)
    if strategy is Strategy.UPLOAD_PART_COPY:
        return server_copy.start_part_copy(rt, task, op)
    if strategy is Strategy.STREAM:
        return streaming.stream_small(rt, task, op, meter)
    return streaming.start_stream(rt, task, op, meter)
