"""What a worker does with each task: the only place that moves bytes.

A :class:`Runtime` lives in each worker process (or once in the parent with ``processes=0``). It owns
one S3 client per endpoint (clients are thread-safe and cannot cross a process boundary), runs a task
on the calling thread and emits reports through ``emit``. Every failure becomes a
:class:`~drtransfer.engine.messages.TaskFailed` with one sentence and no secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import botocore.exceptions

from drtransfer.endpoints import Endpoint, make_s3_client
from drtransfer.engine.checksums import (
    SOURCE_ETAG_META,
    clean_etag,
    content_md5,
    crc_function,
    is_plain_md5,
    multipart_count,
    multipart_etag,
    source_etag_from_metadata,
    stored_checksum,
    whole_checksum,
)
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
from drtransfer.engine.settings import MAX_PARTS, MAX_SINGLE_COPY, MIN_PART, EngineSettings, MiB
from drtransfer.engine.signing import use_content_md5_signing
from drtransfer.operations import CopyObject, DeleteObject, ObjectLocation, PutBytes
from drtransfer.s3errors import describe_client_error, error_code

READ_CHUNK = 1 * MiB
PROGRESS_INTERVAL = 0.2  # seconds between progress reports of one task (plus one at its end)
LISTING_LIMIT = 10_000  # above this many keys under a root, HEAD each target instead
SEQUENTIAL_PARTS_IN_FLIGHT = 4  # parts a sequential stream uploads at once (memory: this + 1 parts)
# Codes that no retry will fix: fail the operation at once with the sentence.
NON_RETRYABLE = {
    "AccessDenied",
    "403",
    "Forbidden",
    "NoSuchBucket",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "NoSuchKey",
    "404",
    "NotFound",
    "InvalidBucketName",
    "EntityTooSmall",
    "EntityTooLarge",
}
# Errors from reading a response body: the request succeeded, the stream broke.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.ConnectionClosedError,
    OSError,
)
try:  # urllib3's ProtocolError is not an OSError
    from urllib3.exceptions import HTTPError as _Urllib3Error

    STREAM_ERRORS = (*STREAM_ERRORS, _Urllib3Error)
except ImportError:  # pragma: no cover - urllib3 ships with botocore
    pass
# Reading a body straight from http.client (see _direct_reader) can also raise its IncompleteRead.
READ_ERRORS: tuple[type[BaseException], ...] = (*STREAM_ERRORS, http.client.HTTPException)


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """The run is being cancelled: drop the task."""


class TaskError(Exception):
    """A task failed with a user-facing sentence."""

    def __init__(self, sentence: str, *, retryable: bool = True, fallback: bool = False, code: str = "") -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.retryable = retryable
        self.fallback = fallback
        self.code = code


class Meter:
    """Progress of one task, sent at most about every MiB and every ``PROGRESS_INTERVAL`` seconds rather
    than per read (each report is a message to the parent)."""

    def __init__(self, emit: Callable[[Report], None], model: int, op_index: int) -> None:
        self._emit = emit
        self._model = model
        self._op = op_index
        self._pending = 0
        self._last = time.monotonic()
        self.total = 0

    def add(self, count: int) -> None:
        self._pending += count
        self.total += count
        if self._pending >= READ_CHUNK and time.monotonic() - self._last >= PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self._pending and self._model >= 0:
            self._emit(Progress(self._model, self._op, self._pending))
            self._last = time.monotonic()
        self._pending = 0


class BufferPool:
    """Part buffers of one process, reused across tasks.

    A fresh multi-MiB ``bytearray`` is mapped and zeroed page by page with the GIL held (about 2,000
    page faults per 8 MiB part: a quarter of a worker's CPU on large objects). A buffer given back is
    kept for the next task of the same size while the buffers in use plus the ones kept stay within
    ``keep`` bytes (``concurrency x part size``: what the process may hold anyway), so the pool never
    raises the peak.
    """

    MIN_SIZE = 1 * MiB  # smaller buffers are cheap to make

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._free: dict[int, list[bytearray]] = {}
        self._kept = 0
        self._out = 0  # bytes of pool-sized buffers handed out and not given back
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        if size < self.MIN_SIZE:
            return bytearray(size)
        with self._lock:
            self._out += size
            free = self._free.get(size)
            if free:
                self._kept -= size
                return free.pop()
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        size = len(buffer)
        if size < self.MIN_SIZE:
            return
        with self._lock:
            self._out = max(0, self._out - size)
            if self._out + self._kept + size <= self._keep:
                self._free.setdefault(size, []).append(buffer)
                self._kept += size

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self._kept = 0


def _as_botocore_error(error: BaseException, url: str) -> BaseException:
    """An error of a body read straight from http.client as botocore raises it through urllib3, so it
    gets the same sentence (a stall is a read timeout, anything else a broken connection)."""
    translated: BaseException = error
    if isinstance(error, TimeoutError):
        translated = botocore.exceptions.ReadTimeoutError(endpoint_url=url, error=error)
    elif isinstance(error, OSError | http.client.HTTPException):
        translated = botocore.exceptions.ResponseStreamingError(error=error)
    return translated


def _direct_reader(body: Any) -> Any:
    """The ``http.client`` response under botocore's StreamingBody and urllib3's response, or None.

    Reading it straight into the part buffer (``recv_into``, GIL released) skips urllib3's ``read``, which
    allocates and copies every chunk twice: on large parts that was a third of a worker's CPU. botocore
    asks urllib3 not to decode content, so the bytes are the same. Any other shape: None (use the body).
    """
    raw = getattr(body, "_raw_stream", None)
    fp = getattr(raw, "_fp", None)
    if not isinstance(fp, http.client.HTTPResponse) or getattr(raw, "_decoder", None) is not None:
        return None
    if not callable(getattr(raw, "release_conn", None)):
        return None
    return fp


def own_parts(size: int, part_size: int) -> tuple[PartSpec, ...]:
    """Parts of ``part_size`` (grown so there are at most 10,000), the last one shorter."""
    size_per = max(part_size, math.ceil(size / MAX_PARTS))
    size_per = math.ceil(size_per / MiB) * MiB
    return tuple(
        PartSpec(number, start, min(start + size_per, size))
        for number, start in enumerate(range(0, max(size, 1), size_per), start=1)
    )


class Runtime:
    """Executes tasks against the endpoints; one per worker process."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        settings: EngineSettings,
        emit: Callable[[Report], None],
        cancel: CancelFlag,
    ) -> None:
        self.endpoints = dict(endpoints)
        self.settings = settings
        self.emit = emit
        self.cancel = cancel
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._helpers: ThreadPoolExecutor | None = None
        self.buffers = BufferPool(settings.concurrency * settings.part_size)
        self._current = threading.local()  # (model, op_index) of the task this thread works on

    # ---- plumbing -------------------------------------------------------------------------------

    def client(self, name: str) -> Any:
        with self._lock:
            if name not in self._clients:
                client = make_s3_client(self.endpoints[name], self.settings.client_settings())
                client.meta.events.register("needs-retry.s3", self._saw_attempt)
                use_content_md5_signing(client)
                self._clients[name] = client
            return self._clients[name]

    def helpers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="drtransfer-part")
            return self._helpers

    def close(self) -> None:
        if self._helpers is not None:
            self._helpers.shutdown(wait=False, cancel_futures=True)
        self.buffers.clear()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def error(self, error: BaseException, endpoint: str, bucket: str, action: str) -> TaskError:
        sentence = str(describe_client_error(error, endpoint=self.endpoints[endpoint], bucket=bucket, action=action))
        code = error_code(error)
        retryable = code not in NON_RETRYABLE and not isinstance(error, botocore.exceptions.NoCredentialsError)
        return TaskError(sentence, retryable=retryable, code=code)

    def working_on(self, where: tuple[int, int] | None) -> None:
        """Name the (model, op_index) this thread's requests belong to, for :meth:`note_retries`."""
        self._current.where = where

    def current_task(self) -> tuple[int, int] | None:
        where: tuple[int, int] | None = getattr(self._current, "where", None)
        return where

    def _saw_attempt(self, response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
        """botocore's ``needs-retry`` event, seen after every attempt of a request on this thread: keep
        what went wrong, so a retry can be reported with its reason (``SlowDown``, a reset ...)."""
        reason = ""
        if caught_exception is not None:
            reason = type(caught_exception).__name__
        elif isinstance(response, tuple) and len(response) == 2:
            http, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, Mapping) else None
            status = int(getattr(http, "status_code", 0) or 0)
            reason = str(code or (status if status >= 400 else ""))
        if reason:
            self._current.reasons = [*getattr(self._current, "reasons", []), reason]

    def note_retries(self, response: Any, action: str) -> None:
        """Report the retries botocore made inside one call (``ResponseMetadata.RetryAttempts``)."""
        metadata = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
        count = int((metadata or {}).get("RetryAttempts") or 0)
        where = self.current_task()
        if count and where is not None and where[1] >= 0:
            reasons = tuple(getattr(self._current, "reasons", [])[:count])
            self.emit(ClientRetried(where[0], where[1], count, action, reasons))

    def call(self, endpoint: str, bucket: str, action: str, method: str, **kwargs: Any) -> Any:
        self.check_cancel()
        self._current.reasons = []
        try:
            answer = getattr(self.client(endpoint), method)(Bucket=bucket, **kwargs)
        except botocore.exceptions.ClientError as error:
            self.note_retries(error.response, action)
            raise self.error(error, endpoint, bucket, action) from None
        except (botocore.exceptions.BotoCoreError, *STREAM_ERRORS) as error:
            raise self.error(error, endpoint, bucket, action) from None
        self.note_retries(answer, action)
        return answer

    def read_body(self, response: Any, expected: int, meter: Meter, where: ObjectLocation) -> bytearray:
        """Read a response body of ``expected`` bytes into one buffer from :attr:`buffers` (no chunk joins,
        so a part costs its size in memory once), reporting progress as it goes. The caller gives the
        buffer back (``self.buffers.give``) when done with it."""
        body = response["Body"]
        direct = _direct_reader(body)
        read_into = direct.readinto if direct is not None else body.readinto
        buffer = self.buffers.take(expected)
        view = memoryview(buffer)
        got = 0
        try:
            while got < expected:
                self.check_cancel()
                count = read_into(view[got : min(expected, got + READ_CHUNK)])
                if not count:
                    break
                got += count
                meter.add(count)
            extra = b""
            if got == expected:
                if direct is not None and direct.isclosed():  # exactly Content-Length bytes: reuse the connection
                    body._raw_stream.release_conn()
                else:
                    extra = body.read(1)
        except READ_ERRORS as error:
            view.release()
            self.buffers.give(buffer)
            error = _as_botocore_error(error, where.url) if direct is not None else error
            raise self.error(error, where.endpoint, where.bucket, f"read {where.url}") from None
        finally:
            view.release()
            body.close()
        if got != expected or extra:
            self.buffers.give(buffer)
            raise TaskError(
                f"Reading {where.url} on the {self.describe(where)} returned a different size than the {expected} "
                f"bytes announced."
            )
        return buffer

    def describe(self, location: ObjectLocation) -> str:
        return self.endpoints[location.endpoint].describe()

    def mismatch(self, location: ObjectLocation, what: str, fallback: bool = False) -> TaskError:
        return TaskError(
            f"Verification of {location.url} on the {self.describe(location)} failed: {what}; "
            f"nothing was written at the target key.",
            fallback=fallback,
        )

    # ---- entry point ---------------------------------------------------------------------------

    def execute(self, task: Task) -> None:
        model = getattr(task, "model", -1)
        meter = Meter(self.emit, model, getattr(task, "op_index", -1))
        self.working_on((model, getattr(task, "op_index", -1)))
        try:
            report = self._run(task, meter)
            meter.flush()
            self.emit(report)
        except Cancelled:
            meter.flush()
            self.emit(TaskFailed(task.task_id, "cancelled", retryable=False, rewind=meter.total))
        except TaskError as error:
            meter.flush()
            self.emit(TaskFailed(task.task_id, error.sentence, error.retryable, meter.total, error.fallback))
        except Exception as error:  # a bug or an unexpected library error: report, never kill the worker
            meter.flush()
            sentence = f"Unexpected error: {type(error).__name__}: {error}."
            self.emit(TaskFailed(task.task_id, sentence, retryable=True, rewind=meter.total))
        finally:
            self.working_on(None)

    def _run(self, task: Task, meter: Meter) -> Report:
        if isinstance(task, PartTask):
            return self.copy_part(task, meter) if task.copy else self.stream_part(task, meter)
        if isinstance(task, OpTask):
            return self.operation(task, meter)
        if isinstance(task, CompleteTask):
            return self.complete(task)
        if isinstance(task, AbortTask):
            return self.abort(task)
        if isinstance(task, RemoveTask):
            return self.remove(task)
        if isinstance(task, PrepareTask):
            return self.prepare(task)
        if isinstance(task, AuditTask):
            return self.audit(task)
        return self.probe(task)

    # ---- prepare, probe, abort ----------------------------------------------------------------

    def prepare(self, task: PrepareTask) -> PrepareDone:
        if task.fresh:  # a new, possibly write-only root: every target is known to be absent
            return PrepareDone(task.task_id, (), 0, None)
        root = task.root
        swept, note = 0, None
        try:
            swept = sweep_uploads(self, root, dry_run=task.dry_run)
        except TaskError as error:  # some servers cannot list uploads (rclone before the first one)
            note = f"Could not look for unfinished multipart uploads under {root.url}: {error.sentence}"
        listing = self.list_keys(root, task.keys, LISTING_LIMIT)
        return PrepareDone(task.task_id, None if listing is None else tuple(listing), swept, note)

    def list_keys(
        self, root: ObjectLocation, keys: frozenset[str], limit: int | None
    ) -> list[tuple[str, int, str]] | None:
        """(key, size, ETag) of every object under ``root`` whose key is in ``keys``; None when there are
        more than ``limit`` objects under ``root``."""
        listing: list[tuple[str, int, str]] = []
        kwargs: dict[str, Any] = {"Prefix": root.key}
        seen = 0
        while True:
            page = self.call(root.endpoint, root.bucket, f"list {root.url}", "list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                seen += 1
                if item["Key"] in keys:
                    listing.append((item["Key"], int(item["Size"]), clean_etag(item.get("ETag"))))
            if limit is not None and seen > limit:
                return None
            if not page.get("IsTruncated"):
                return listing
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def audit(self, task: AuditTask) -> AuditDone:
        root = task.root
        found: list[tuple[ObjectLocation, TargetState]] = []
        if task.keys:
            for key, size, etag in self.list_keys(root, task.keys, None) or []:
                found.append((ObjectLocation(root.endpoint, root.bucket, key), TargetState(size, etag)))
        for location in task.others:
            head = self.head_target(location)
            if head is not None:
                found.append((location, TargetState(int(head["ContentLength"]), clean_etag(head.get("ETag")))))
        return AuditDone(task.task_id, tuple(found))

    def probe(self, task: ProbeTask) -> ProbeDone:
        """Copy a probe object with two UploadPartCopy parts and read it back (rclone serve s3 answers
        200 and stores empty parts; others answer NotImplemented)."""
        ep, bucket = task.endpoint, task.bucket
        name = f"{task.prefix}.drtransfer-probe-{uuid.uuid4().hex}"
        data = os.urandom(MIN_PART + 1024)
        where = f"probe UploadPartCopy under s3://{bucket}/{task.prefix}"
        self.call(ep, bucket, where, "put_object", Key=name + "-src", Body=data)
        upload_id: str | None = None
        try:
            upload_id = self.call(ep, bucket, where, "create_multipart_upload", Key=name + "-dst")["UploadId"]
            parts = []
            for number, (start, end) in enumerate(((0, MIN_PART), (MIN_PART, len(data))), start=1):
                answer = self.call(
                    ep, bucket, where, "upload_part_copy", Key=name + "-dst", UploadId=upload_id,
                    PartNumber=number, CopySource={"Bucket": bucket, "Key": name + "-src"},
                    CopySourceRange=f"bytes={start}-{end - 1}",
                )  # fmt: skip
                etag = answer.get("CopyPartResult", {}).get("ETag")
                if not etag:
                    return ProbeDone(task.task_id, False, "UploadPartCopy answered without an ETag")
                parts.append({"PartNumber": number, "ETag": etag})
            self.call(
                ep, bucket, where, "complete_multipart_upload", Key=name + "-dst", UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )  # fmt: skip
            upload_id = None
            got = self.call(ep, bucket, where, "get_object", Key=name + "-dst")["Body"].read()
            if got != data:
                return ProbeDone(task.task_id, False, f"UploadPartCopy stored {len(got)} wrong bytes")
            return ProbeDone(task.task_id, True, "UploadPartCopy works")
        except TaskError as error:
            return ProbeDone(task.task_id, False, error.sentence)
        finally:
            if upload_id:
                self._quiet(ep, bucket, "abort_multipart_upload", Key=name + "-dst", UploadId=upload_id)
            for suffix in ("-src", "-dst"):
                self._quiet(ep, bucket, "delete_object", Key=name + suffix)

    def _quiet(self, endpoint: str, bucket: str, method: str, **kwargs: Any) -> None:
        with contextlib.suppress(Exception):  # best-effort clean-up of our own objects
            getattr(self.client(endpoint), method)(Bucket=bucket, **kwargs)

    def remove(self, task: RemoveTask) -> RemoveDone:
        for target in task.targets:
            remove_object(self, target)
        return RemoveDone(task.task_id)

    def abort(self, task: AbortTask) -> AbortDone:
        try:
            abort_upload(self, task.upload)
        except TaskError as error:
            return AbortDone(task.task_id, False, error.sentence)
        return AbortDone(task.task_id, True, None)

    # ---- operations ----------------------------------------------------------------------------

    def operation(self, task: OpTask, meter: Meter) -> Report:
        op = task.op
        if isinstance(op, PutBytes):
            return self.put_bytes(task, op, meter)
        if isinstance(op, DeleteObject):
            if task.dry_run:
                return OpDone(task.task_id, "dry-run", 0, "delete")
            target = op.target
            self.call(target.endpoint, target.bucket, f"delete {target.url}", "delete_object", Key=target.key)
            return OpDone(task.task_id, "deleted", 0, "delete")
        return self.copy(task, op, meter)

    def head_target(self, location: ObjectLocation) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.call(
                location.endpoint, location.bucket, f"check {location.url}", "head_object", Key=location.key
            )
        except TaskError as error:
            if error.code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def target_state(self, task: OpTask) -> TargetState | None:
        if task.target_known:
            return task.target
        head = self.head_target(task.op.target)
        return TargetState(int(head["ContentLength"]), clean_etag(head.get("ETag"))) if head else None

    def put_bytes(self, task: OpTask, op: PutBytes, meter: Meter) -> Report:
        digest = hashlib.md5(op.body).digest()
        target = op.target
        state = self.target_state(task)
        if state and state.size == len(op.body) and state.etag == digest.hex():
            return OpDone(task.task_id, "skipped", 0, "skip", state.etag)
        if task.dry_run:
            return OpDone(task.task_id, "dry-run", 0, "put")
        answer = self.call(
            target.endpoint, target.bucket, f"write {target.url}", "put_object", Key=target.key, Body=op.body,
            ContentMD5=content_md5(digest), ContentType=op.content_type,
        )  # fmt: skip
        self.check_written(target, answer.get("ETag"), digest.hex())
        meter.add(len(op.body))
        return OpDone(task.task_id, "put", len(op.body), "put", clean_etag(answer.get("ETag")))

    def check_written(self, target: ObjectLocation, etag: str | None, expected: str) -> None:
        got = clean_etag(etag)
        if is_plain_md5(got) and got != expected:
            raise TaskError(f"The {self.describe(target)} stored {target.url} with ETag {got} instead of {expected}.")

    def is_skip(self, task: OpTask, op: CopyObject) -> TargetState | None:
        """What is at the target when it already holds the source's bytes, else None."""
        state = self.target_state(task)
        source_etag = clean_etag(op.source.etag)
        if state is None or state.size != op.source.size:
            return None
        if state.etag == source_etag:
            return state
        head = self.head_target(op.target)  # the ETag may legitimately differ: look for our metadata
        if head is None or source_etag_from_metadata(head.get("Metadata")) != source_etag:
            return None
        return TargetState(int(head["ContentLength"]), clean_etag(head.get("ETag")))

    def copy(self, task: OpTask, op: CopyObject, meter: Meter) -> Report:
        there = self.is_skip(task, op)
        if there is not None:
            return OpDone(task.task_id, "skipped", 0, "skip", there.etag)
        source, target = op.source.location, op.target
        size = op.source.size
        same = not task.force_stream and self.endpoints[source.endpoint].same_store(self.endpoints[target.endpoint])
        if same and size <= min(self.settings.copy_threshold, MAX_SINGLE_COPY):
            if task.dry_run:
                return OpDone(task.task_id, "dry-run", 0, "copy-object")
            return self.copy_object(task, op, meter)
        if same and task.dry_run:
            return OpDone(task.task_id, "dry-run", 0, "upload-part-copy (if the probe passes, else stream)")
        if same and task.probe_ok:
            return self.start_part_copy(task, op)
        if size <= self.settings.multipart_threshold:
            if task.dry_run:
                return OpDone(task.task_id, "dry-run", 0, "stream")
            return self.stream_small(task, op, meter, "stream")
        if task.dry_run:
            return OpDone(task.task_id, "dry-run", 0, "stream-multipart")
        return self.start_stream(task, op, meter)

    def copy_object(self, task: OpTask, op: CopyObject, meter: Meter) -> Report:
        source, target = op.source.location, op.target
        answer = self.call(
            target.endpoint, target.bucket, f"copy {source.url} to {target.url}", "copy_object", Key=target.key,
            CopySource={"Bucket": source.bucket, "Key": source.key}, MetadataDirective="COPY",
        )  # fmt: skip
        etag = clean_etag(answer.get("CopyObjectResult", {}).get("ETag"))
        expected = clean_etag(op.source.etag)
        if etag != expected:
            head = self.head_target(target)
            if head is None or int(head["ContentLength"]) != op.source.size:
                raise self.mismatch(target, "the server-side copy has the wrong size", fallback=True)
            if not multipart_count(expected):  # only a multipart source may come back re-hashed
                raise self.mismatch(target, f"the copy's ETag {etag} differs from the source's {expected}", True)
            etag = clean_etag(head.get("ETag"))
        meter.add(op.source.size)
        return OpDone(task.task_id, "copied", op.source.size, "copy-object", etag)

    def source_head(self, source: ObjectLocation, **kwargs: Any) -> dict[str, Any]:
        head: dict[str, Any] = self.call(
            source.endpoint, source.bucket, f"read {source.url}", "head_object", Key=source.key, **kwargs
        )
        return head

    def source_parts(self, source: ObjectLocation, size: int, count: int) -> tuple[PartSpec, ...]:
        """The part layout of a multipart source (``md5-N``), so our parts' MD5s combine to its ETag."""
        if count == 1:
            return (PartSpec(1, 0, size),)
        first = int(self.source_head(source, PartNumber=1)["ContentLength"])
        if first > 0 and (count - 1) * first < size <= count * first:
            return tuple(PartSpec(n + 1, n * first, min((n + 1) * first, size)) for n in range(count))
        sizes = [int(self.source_head(source, PartNumber=n)["ContentLength"]) for n in range(1, count + 1)]
        if sum(sizes) != size:
            raise TaskError(
                f"The {self.describe(source)} does not report the part layout of {source.url}; "
                f"its multipart ETag cannot be verified.",
                retryable=False,
            )
        parts, start = [], 0
        for number, length in enumerate(sizes, start=1):
            parts.append(PartSpec(number, start, start + length))
            start += length
        return tuple(parts)

    def verify_source_bytes(
        self, source: ObjectLocation, etag: str, data: bytes | bytearray, md5: bytes | None = None
    ) -> None:
        """Check bytes read from ``source`` against its ETag or stored checksum (``md5``: of ``data``, if
        already computed)."""
        if is_plain_md5(etag):
            if (md5 or hashlib.md5(data).digest()).hex() != etag:
                raise self.mismatch(source, f"the bytes read do not match the source ETag {etag}")
            return
        count = multipart_count(etag)
        if count:
            parts = self.source_parts(source, len(data), count)
            got = multipart_etag(hashlib.md5(data[p.start : p.end]).digest() for p in parts)
            if got != etag:
                raise self.mismatch(source, f"the bytes read do not match the source ETag {etag}")
            return
        stored = stored_checksum(self.source_head(source, ChecksumMode="ENABLED"))
        if stored:
            value = whole_checksum(stored[0], data)
            if value is not None and value != stored[1]:
                raise self.mismatch(source, f"the bytes read do not match the source's {stored[0]} checksum")
        # else: no content checksum exists for this source; its size was checked while reading

    def metadata_for(self, response: Mapping[str, Any], source_etag: str) -> dict[str, str]:
        metadata = {
            key: value for key, value in (response.get("Metadata") or {}).items() if key.lower() != SOURCE_ETAG_META
        }
        metadata[SOURCE_ETAG_META] = source_etag
        return metadata

    def stream_small(self, task: OpTask, op: CopyObject, meter: Meter, strategy: str) -> Report:
        source, target = op.source.location, op.target
        response = self.call(source.endpoint, source.bucket, f"read {source.url}", "get_object", Key=source.key)
        etag = clean_etag(response.get("ETag"))
        data = self.read_body(response, int(response["ContentLength"]), meter, source)
        try:
            digest = hashlib.md5(data).digest()
            self.verify_source_bytes(source, etag, data, digest)
            answer = self.call(
                target.endpoint, target.bucket, f"write {target.url}", "put_object", Key=target.key, Body=data,
                ContentMD5=content_md5(digest), ContentType=response.get("ContentType") or "binary/octet-stream",
                Metadata=self.metadata_for(response, etag),
            )  # fmt: skip
        finally:
            self.buffers.give(data)
        self.check_written(target, answer.get("ETag"), digest.hex())
        return OpDone(task.task_id, "copied", len(data), strategy, clean_etag(answer.get("ETag")))

    def create_upload(self, task_id: int, target: ObjectLocation, head: Mapping[str, Any], etag: str) -> UploadRef:
        answer = self.call(
            target.endpoint, target.bucket, f"start the upload of {target.url}", "create_multipart_upload",
            Key=target.key, ContentType=head.get("ContentType") or "binary/octet-stream",
            Metadata=self.metadata_for(head, etag),
        )  # fmt: skip
        upload = UploadRef(target.endpoint, target.bucket, target.key, answer["UploadId"])
        self.emit(UploadStarted(task_id, upload))
        return upload

    def start_part_copy(self, task: OpTask, op: CopyObject) -> Report:
        source = op.source.location
        head = self.source_head(source)
        size, etag = int(head["ContentLength"]), clean_etag(head.get("ETag"))
        count = multipart_count(etag)
        if count:
            parts, expected = self.source_parts(source, size, count), etag
        elif is_plain_md5(etag) and size <= MAX_SINGLE_COPY:
            parts, expected = (PartSpec(1, 0, size),), etag  # one part: its ETag is the source MD5
        else:
            parts, expected = own_parts(size, max(self.settings.part_size, 256 * MiB)), ""
        upload = self.create_upload(task.task_id, op.target, head, etag)
        verify = Verify("copy-parts", expected, size)
        return OpMultipart(task.task_id, upload, parts, verify, "upload-part-copy", copy=True, crc=None)

    def start_stream(self, task: OpTask, op: CopyObject, meter: Meter) -> Report:
        source = op.source.location
        head = self.source_head(source, ChecksumMode="ENABLED")
        size, etag = int(head["ContentLength"]), clean_etag(head.get("ETag"))
        if size <= self.settings.multipart_threshold:  # the source shrank since it was listed
            return self.stream_small(task, op, meter, "stream")
        count = multipart_count(etag)
        stored = stored_checksum(head)
        crc: str | None = None
        if count:
            parts, verify = self.source_parts(source, size, count), Verify("md5-parts", etag, size)
        elif stored and stored[0] in ("crc32", "crc32c") and crc_function(stored[0]):
            crc = stored[0]
            parts, verify = own_parts(size, self.settings.part_size), Verify(stored[0], stored[1], size)  # type: ignore[arg-type]
        elif is_plain_md5(etag) or (stored and whole_checksum(stored[0], b"") is not None):
            return self.sequential(task, op, head, etag, stored, meter)
        else:
            parts, verify = own_parts(size, self.settings.part_size), Verify("size", "", size)
        upload = self.create_upload(task.task_id, op.target, head, etag)
        return OpMultipart(task.task_id, upload, parts, verify, "stream-multipart", copy=False, crc=crc)

    def sequential(
        self,
        task: OpTask,
        op: CopyObject,
        head: Mapping[str, Any],
        etag: str,
        stored: tuple[str, str] | None,
        meter: Meter,
    ) -> Report:
        """One GET read in order (so the whole-object MD5/SHA can be checked) feeding parallel UploadParts;
        completed only when the whole digest matches."""
        source, target = op.source.location, op.target
        size = int(head["ContentLength"])
        if is_plain_md5(etag):
            whole: Any = hashlib.md5()
            expected, label = etag, "ETag"
        else:
            assert stored is not None
            whole = hashlib.sha256() if stored[0] == "sha256" else hashlib.new(stored[0])
            expected, label = stored[1], stored[0]
        upload = self.create_upload(task.task_id, target, head, etag)
        try:
            parts = self._sequential_parts(upload, source, size, whole, meter)
            got = whole.hexdigest() if label == "ETag" else base64.b64encode(whole.digest()).decode("ascii")
            if got != expected:
                raise self.mismatch(source, f"the bytes read do not match the source {label}")
            answer = self.call(
                target.endpoint, target.bucket, f"complete the upload of {target.url}", "complete_multipart_upload",
                Key=target.key, UploadId=upload.upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e, _ in parts]},
            )  # fmt: skip
            final, sent = clean_etag(answer.get("ETag")), multipart_etag(digest for _, _, digest in parts)
            if multipart_count(final) and final != sent:
                self._quiet(target.endpoint, target.bucket, "delete_object", Key=target.key)
                raise TaskError(f"The target reported ETag {final} for {target.url} instead of {sent}.")
        except BaseException:
            with contextlib.suppress(TaskError):  # else the scheduler aborts it at the end
                abort_upload(self, upload)
            raise
        return OpDone(task.task_id, "copied", size, "stream-sequential", final)

    def _sequential_parts(
        self, upload: UploadRef, source: ObjectLocation, size: int, whole: Any, meter: Meter
    ) -> list[tuple[int, str, bytes]]:
        response = self.call(source.endpoint, source.bucket, f"read {source.url}", "get_object", Key=source.key)
        body = response["Body"]
        slots = threading.BoundedSemaphore(min(SEQUENTIAL_PARTS_IN_FLIGHT, self.settings.concurrency))
        futures: list[Future[tuple[int, str, bytes]]] = []
        layout = own_parts(size, self.settings.part_size)
        where = self.current_task()

        def send(number: int, data: bytearray) -> tuple[int, str, bytes]:
            self.working_on(where)  # a helper thread: its retries count for this task's operation
            try:
                digest = hashlib.md5(data).digest()
                answer = self.call(
                    upload.endpoint, upload.bucket, f"upload part {number} of s3://{upload.bucket}/{upload.key}",
                    "upload_part", Key=upload.key, UploadId=upload.upload_id, PartNumber=number, Body=data,
                    ContentMD5=content_md5(digest),
                )  # fmt: skip
                return number, clean_etag(answer.get("ETag")), digest
            finally:
                self.buffers.give(data)
                slots.release()

        direct = _direct_reader(body)
        read_into = direct.readinto if direct is not None else body.readinto
        try:
            for part in layout:
                data = self.buffers.take(part.size)  # read in place: no chunk list, no join
                view = memoryview(data)
                got = 0
                try:
                    while got < part.size:
                        self.check_cancel()
                        count = read_into(view[got : min(part.size, got + READ_CHUNK)])
                        if not count:
                            raise TaskError(f"Reading {source.url} on the {self.describe(source)} ended early.")
                        got += count
                        meter.add(count)
                except READ_ERRORS as error:
                    error = _as_botocore_error(error, source.url) if direct is not None else error
                    raise self.error(error, source.endpoint, source.bucket, f"read {source.url}") from None
                finally:
                    view.release()
                whole.update(data)
                slots.acquire()
                futures.append(self.helpers().submit(send, part.number, data))
                for future in futures:  # fail fast when a part upload already failed
                    if future.done() and future.exception():
                        future.result()
            if direct is not None and direct.isclosed():  # read to its end: the connection can be reused
                body._raw_stream.release_conn()
            return [future.result() for future in futures]
        finally:
            body.close()
            for future in futures:
                future.cancel()

    # ---- parts and completion ------------------------------------------------------------------

    def stream_part(self, task: PartTask, meter: Meter) -> PartDone:
        source, upload, part = task.source, task.upload, task.part
        response = self.call(
            source.endpoint, source.bucket, f"read {source.url}", "get_object", Key=source.key,
            Range=f"bytes={part.start}-{part.end - 1}",
        )  # fmt: skip
        data = self.read_body(response, part.size, meter, source)
        try:
            digest = hashlib.md5(data).digest()
            crc_of = crc_function(task.crc) if task.crc else None
            crc = crc_of(data, 0) if crc_of else None
            answer = self.call(
                upload.endpoint, upload.bucket, f"upload part {part.number} of s3://{upload.bucket}/{upload.key}",
                "upload_part", Key=upload.key, UploadId=upload.upload_id, PartNumber=part.number, Body=data,
                ContentMD5=content_md5(digest),
            )  # fmt: skip
        finally:
            self.buffers.give(data)
        etag = clean_etag(answer.get("ETag"))
        if is_plain_md5(etag) and etag != digest.hex():
            raise TaskError(f"The target stored part {part.number} of s3://{upload.bucket}/{upload.key} wrongly.")
        return PartDone(task.task_id, part.number, etag, digest, crc, part.size)

    def copy_part(self, task: PartTask, meter: Meter) -> PartDone:
        source, upload, part = task.source, task.upload, task.part
        answer = self.call(
            upload.endpoint, upload.bucket, f"copy part {part.number} of {source.url}", "upload_part_copy",
            Key=upload.key, UploadId=upload.upload_id, PartNumber=part.number,
            CopySource={"Bucket": source.bucket, "Key": source.key},
            CopySourceRange=f"bytes={part.start}-{part.end - 1}",
        )  # fmt: skip
        etag = clean_etag(answer.get("CopyPartResult", {}).get("ETag"))
        if not etag:
            raise TaskError(f"UploadPartCopy of {source.url} answered without an ETag.", fallback=True)
        meter.add(part.size)
        return PartDone(task.task_id, part.number, etag, None, None, part.size)

    def complete(self, task: CompleteTask) -> CompleteDone:
        upload = task.upload
        url = f"s3://{upload.bucket}/{upload.key}"
        action = f"complete the upload of {url}"
        if task.expected_sizes is not None:
            self.check_part_sizes(task)
        try:
            answer = self.call(
                upload.endpoint, upload.bucket, action, "complete_multipart_upload", Key=upload.key,
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in task.parts]},
            )  # fmt: skip
            etag = clean_etag(answer.get("ETag"))
        except TaskError as error:
            if error.code != "NoSuchUpload":
                raise
            # An earlier Complete may have succeeded before its answer was lost: look at the target.
            head = self.head_target(ObjectLocation(upload.endpoint, upload.bucket, upload.key))
            if head is None or int(head["ContentLength"]) != task.size:
                raise
            etag = clean_etag(head.get("ETag"))
        if task.expected_etag and multipart_count(etag) and etag != task.expected_etag:
            self._quiet(upload.endpoint, upload.bucket, "delete_object", Key=upload.key)
            raise TaskError(f"The target reported ETag {etag} for {url} instead of {task.expected_etag}.")
        return CompleteDone(task.task_id, etag)

    def check_part_sizes(self, task: CompleteTask) -> None:
        upload = task.upload
        sizes: dict[int, int] = {}
        kwargs: dict[str, Any] = {"Key": upload.key, "UploadId": upload.upload_id}
        for _page in range(MAX_PARTS // 1000 + 1):
            page = self.call(upload.endpoint, upload.bucket, f"list the parts of s3://{upload.bucket}/{upload.key}",
                             "list_parts", **kwargs)  # fmt: skip
            sizes.update({int(p["PartNumber"]): int(p["Size"]) for p in page.get("Parts", [])})
            if not page.get("IsTruncated"):
                break
            kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]
        expected = task.expected_sizes or ()
        if [sizes.get(n) for n, _ in task.parts] != list(expected):
            raise TaskError(
                f"The server stored parts of the wrong size for s3://{upload.bucket}/{upload.key} "
                f"(UploadPartCopy is broken there); copying through the client instead.",
                fallback=True,
            )


def sweep_uploads(runtime: Runtime, root: ObjectLocation, *, dry_run: bool) -> int:
    """Abort every multipart upload under ``root`` (left by an earlier crash); count them."""
    count = 0
    kwargs: dict[str, Any] = {"Prefix": root.key}
    for _page in range(1000):
        page = runtime.call(
            root.endpoint, root.bucket, f"list unfinished uploads under {root.url}", "list_multipart_uploads", **kwargs
        )
        for item in page.get("Uploads", []):
            count += 1
            if not dry_run:
                abort_upload(runtime, UploadRef(root.endpoint, root.bucket, item["Key"], item["UploadId"]))
        if not page.get("IsTruncated"):
            break
        kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
    return count


def remove_object(runtime: Runtime, target: ObjectLocation) -> None:
    """Delete ``target``; an object that is already gone counts as removed."""
    try:
        runtime.call(target.endpoint, target.bucket, f"delete {target.url}", "delete_object", Key=target.key)
    except TaskError as error:
        if error.code not in ("NoSuchKey", "404", "NotFound"):
            raise


def abort_upload(runtime: Runtime, upload: UploadRef) -> None:
    """Abort ``upload``; an upload that is already gone counts as aborted."""
    try:
        runtime.call(
            upload.endpoint, upload.bucket, f"abort the upload of s3://{upload.bucket}/{upload.key}",
            "abort_multipart_upload", Key=upload.key, UploadId=upload.upload_id,
        )  # fmt: skip
    except TaskError as error:
        if error.code not in ("NoSuchUpload", "404", "NotFound"):
            raise
