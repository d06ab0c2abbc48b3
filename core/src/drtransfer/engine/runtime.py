"""The worker runtime: one S3 client per endpoint per process, and the request plumbing every task uses.

A :class:`Runtime` lives in each worker process (or once in the parent with ``processes=0``). Clients are
thread-safe and cannot cross a process boundary, so each process makes its own on first use. Every request
goes through :meth:`Runtime.call`, which turns a failure into a :class:`TaskError` with one sentence and no
secret, and reports the retries botocore made on its own.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

import botocore.exceptions

from drtransfer.endpoints import Endpoint, make_s3_client
from drtransfer.engine.buffers import (
    READ_CHUNK,
    READ_ERRORS,
    STREAM_ERRORS,
    BufferPool,
    as_botocore_error,
    direct_reader,
)
from drtransfer.engine.checksums import clean_etag, is_plain_md5
from drtransfer.engine.messages import ClientRetried, Progress, Report
from drtransfer.engine.outage import outage_reason
from drtransfer.engine.settings import EngineSettings
from drtransfer.engine.signing import use_content_md5_signing
from drtransfer.engine.throttle import build as build_throttle
from drtransfer.operations import ObjectLocation
from drtransfer.s3errors import describe_client_error, error_code, untrusted_certificate

if TYPE_CHECKING:
    from drtransfer.engine.lean import LeanPath

PROGRESS_INTERVAL = 0.2  # seconds between progress reports of one task (plus one at its end)
CANCEL_SLICE = 0.2  # seconds a wait sleeps between looks at the cancel flag
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
NOT_FOUND = ("404", "NoSuchKey", "NotFound")


_attempts = threading.local()  # what went wrong in the attempts of this thread's current request
# The code a BadDigest gets when the Content-MD5 was the source's ETag (see Runtime.call): resending the
# same bytes cannot help, the object must be read again.
SOURCE_DIGEST_REFUSED = "BadDigest-source"


def _refused_source_digest(response: Any = None, **_: Any) -> None:
    """First ``needs-retry`` handler of PutObject: a BadDigest of a body sent with the source's MD5 is not
    retried by botocore (it would send the same wrong bytes up to 10 times, with backoff): it is renamed
    to :data:`SOURCE_DIGEST_REFUSED` before botocore's retry checker looks at it."""
    if not getattr(_attempts, "source_digest", False) or not isinstance(response, tuple) or len(response) != 2:
        return
    parsed = response[1]
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and error.get("Code") == "BadDigest":
        error["Code"] = SOURCE_DIGEST_REFUSED


def _saw_attempt(response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore's ``needs-retry`` event, seen after every attempt of a request on this thread: keep what
    went wrong, so a retry can be reported with its reason (``SlowDown``, a reset ...)."""
    reason = ""
    if caught_exception is not None:
        reason = type(caught_exception).__name__
    elif isinstance(response, tuple) and len(response) == 2:
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, Mapping) else None
        status = int(getattr(http, "status_code", 0) or 0)
        reason = str(code or (status if status >= 400 else ""))
    if reason:
        _attempts.reasons = [*getattr(_attempts, "reasons", []), reason]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """The run is being cancelled: drop the task."""


class TaskError(Exception):
    """A task failed with a user-facing sentence."""

    def __init__(
        self, sentence: str, *, retryable: bool = True, fallback: bool = False, code: str = "", reason: str = "",
        endpoint: str = "",
    ) -> None:  # fmt: skip
        super().__init__(sentence)
        self.sentence = sentence
        self.retryable = retryable
        self.fallback = fallback
        self.code = code
        self.reason = reason  # outage.outage_reason: the endpoint is down, silent or throttling
        self.endpoint = endpoint


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

    def rewind(self, count: int) -> None:
        """Take back ``count`` bytes already reported (a copy that is redone another way)."""
        self._pending -= count
        self.total -= count
        self.flush()

    def take(self) -> int:
        """The bytes not reported yet, which the caller reports with the task's result instead."""
        pending, self._pending = self._pending, 0
        return pending

    def flush(self) -> None:
        if self._pending and self._model >= 0:
            self._emit(Progress(self._model, self._op, self._pending))
            self._last = time.monotonic()
        self._pending = 0


class Runtime:
    """Clients, part buffers and helper threads of one worker process; ``emit`` sends a report."""

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
        self._lean: LeanPath | None = None
        # --bandwidth-limit: this process's share, or None (nothing is paced)
        self.throttle = build_throttle(settings.process_bandwidth, settings.concurrency, self.sleep)
        self.read_step = READ_CHUNK if self.throttle is None else self.throttle.chunk  # bytes per body read
        if multiprocessing.parent_process() is not None:
            # A worker process: what it inherited and imported lives as long as it does; the collector
            # need not walk it again on every collection.
            gc.freeze()

    def client(self, name: str) -> Any:
        """The process's shared client for endpoint ``name`` (see :func:`make_s3_client`), with the engine's
        handlers registered once per client (``unique_id``), whichever runtime asked first."""
        with self._lock:
            if name not in self._clients:
                client = make_s3_client(self.endpoints[name], self.settings.client_settings())
                client.meta.events.register("needs-retry.s3", _saw_attempt, unique_id="drtransfer-attempts")
                client.meta.events.register_first(
                    "needs-retry.s3.PutObject", _refused_source_digest, unique_id="drtransfer-source-digest"
                )
                use_content_md5_signing(client)
                self._clients[name] = client
            return self._clients[name]

    def warm(self) -> None:
        """Build every endpoint's client (and the lean path) before the first task needs them."""
        for name in self.endpoints:
            self.client(name)
        self.lean(*self.endpoints)

    def lean(self, *endpoints: str) -> LeanPath | None:
        """The lean data path when ``settings.data_path == "lean"`` and it can reach every one of ``endpoints``
        (:meth:`LeanPath.usable`), else None: botocore moves the body."""
        if self.settings.data_path != "lean":
            return None
        with self._lock:
            if self._lean is None:
                from drtransfer.engine.lean import LeanPath  # it builds on this module

                self._lean = LeanPath(self)
            path = self._lean
        return path if path.usable(*endpoints) else None

    def helpers(self) -> ThreadPoolExecutor:
        """Threads beside the task threads (the part uploads of a sequential stream)."""
        with self._lock:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="drtransfer-part")
            return self._helpers

    def close(self) -> None:
        if self._helpers is not None:
            self._helpers.shutdown(wait=False, cancel_futures=True)
        if self._lean is not None:
            self._lean.close()
        self.buffers.clear()

    def pace(self, count: int) -> None:
        """Wait until ``count`` more bytes fit in this process's bandwidth limit (none: return at once)."""
        if self.throttle is not None:
            for start in range(0, count, self.throttle.chunk):  # chunk by chunk: a smooth rate
                self.throttle.take(min(self.throttle.chunk, count - start))

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, looking at the cancel flag every :data:`CANCEL_SLICE` seconds (a backoff, a
        bandwidth limit's pause): Ctrl-C ends the wait."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check_cancel()
            time.sleep(min(left, CANCEL_SLICE))

    # ---- errors and retries ----------------------------------------------------------------------

    def error(self, error: BaseException, endpoint: str, bucket: str, action: str) -> TaskError:
        sentence = str(describe_client_error(error, endpoint=self.endpoints[endpoint], bucket=bucket, action=action))
        code = error_code(error)
        retryable = code not in NON_RETRYABLE and not isinstance(error, botocore.exceptions.NoCredentialsError)
        retryable = retryable and not untrusted_certificate(error)
        return TaskError(sentence, retryable=retryable, code=code, reason=outage_reason(error, code), endpoint=endpoint)

    def describe(self, location: ObjectLocation) -> str:
        return self.endpoints[location.endpoint].describe()

    def mismatch(self, location: ObjectLocation, what: str, fallback: bool = False) -> TaskError:
        return TaskError(
            f"Verification of {location.url} on the {self.describe(location)} failed: {what}; "
            f"nothing was written at the target key.",
            fallback=fallback,
        )

    def refused_source(self, source: ObjectLocation, etag: str) -> TaskError:
        """The target refused bytes sent with the source's ETag as their Content-MD5 (``BadDigest``)."""
        return self.mismatch(source, f"the target refused the bytes read as not matching the source ETag {etag}")

    def check_written(self, target: ObjectLocation, etag: str | None, expected: str) -> None:
        """After a single PUT: a plain-MD5 ETag from the target must be the MD5 of the bytes sent."""
        got = clean_etag(etag)
        if is_plain_md5(got) and got != expected:
            raise TaskError(f"The {self.describe(target)} stored {target.url} with ETag {got} instead of {expected}.")

    def working_on(self, where: tuple[int, int] | None) -> None:
        """Name the (model, op_index) this thread's requests belong to, for :meth:`note_retries`."""
        self._current.where = where

    def current_task(self) -> tuple[int, int] | None:
        where: tuple[int, int] | None = getattr(self._current, "where", None)
        return where

    def note_retries(self, response: Any, action: str, endpoint: str = "") -> None:
        """Report the retries botocore made inside one call (``ResponseMetadata.RetryAttempts``)."""
        metadata = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
        count = int((metadata or {}).get("RetryAttempts") or 0)
        self.client_retried(count, tuple(getattr(_attempts, "reasons", [])[:count]), action, endpoint)

    def client_retried(self, count: int, reasons: tuple[str, ...], action: str, endpoint: str = "") -> None:
        """Report ``count`` requests sent again within one call of this thread's task (botocore's or the
        lean data path's own retries)."""
        where = self.current_task()
        if count and where is not None and where[1] >= 0:
            self.emit(ClientRetried(where[0], where[1], count, action, reasons, endpoint))

    # ---- requests --------------------------------------------------------------------------------

    def call(
        self, endpoint: str, bucket: str, action: str, method: str, *, source_digest: bool = False, **kwargs: Any
    ) -> Any:
        """``client(endpoint).method(Bucket=bucket, **kwargs)``; a failure is a :class:`TaskError` naming
        ``action`` ("read s3://bucket/key" ...). ``source_digest``: the Content-MD5 is the source's ETag, so
        a BadDigest fails at once with code :data:`SOURCE_DIGEST_REFUSED`."""
        self.check_cancel()
        _attempts.reasons = []
        _attempts.source_digest = source_digest
        try:
            answer = getattr(self.client(endpoint), method)(Bucket=bucket, **kwargs)
        except botocore.exceptions.ClientError as error:
            self.note_retries(error.response, action, endpoint)
            raise self.error(error, endpoint, bucket, action) from None
        except (botocore.exceptions.BotoCoreError, *STREAM_ERRORS) as error:
            raise self.error(error, endpoint, bucket, action) from None
        self.note_retries(answer, action, endpoint)
        return answer

    def quietly(self, endpoint: str, bucket: str, method: str, **kwargs: Any) -> None:
        """Best-effort clean-up of the engine's own objects: one request, any failure ignored."""
        with contextlib.suppress(Exception):
            getattr(self.client(endpoint), method)(Bucket=bucket, **kwargs)

    def head_target(self, location: ObjectLocation) -> dict[str, Any] | None:
        """HeadObject of a target; None when nothing is there."""
        try:
            head: dict[str, Any] = self.call(
                location.endpoint, location.bucket, f"check {location.url}", "head_object", Key=location.key
            )
        except TaskError as error:
            if error.code in NOT_FOUND:
                return None
            raise
        return head

    def source_head(self, source: ObjectLocation, **kwargs: Any) -> dict[str, Any]:
        head: dict[str, Any] = self.call(
            source.endpoint, source.bucket, f"read {source.url}", "head_object", Key=source.key, **kwargs
        )
        return head

    def read_body(self, response: Any, expected: int, meter: Meter, where: ObjectLocation) -> bytearray:
        """Read a response body of ``expected`` bytes into one buffer from :attr:`buffers` (no chunk joins,
        so a part costs its size in memory once), reporting progress as it goes. The caller gives the
        buffer back (``self.buffers.give``) when done with it."""
        body = response["Body"]
        direct = direct_reader(body)
        read_into = direct.readinto if direct is not None else body.readinto
        buffer = self.buffers.take(expected)
        view = memoryview(buffer)
        got = 0
        try:
            while got < expected:
                self.check_cancel()
                count = read_into(view[got : min(expected, got + self.read_step)])
                if not count:
                    break
                self.pace(count)
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
            error = as_botocore_error(error, where.url) if direct is not None else error
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
