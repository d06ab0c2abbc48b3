"""Part buffers reused across a worker process's tasks, and reading a response body straight into one."""

from __future__ import annotations

import http.client
import threading
from typing import Any

import botocore.exceptions

from drtransfer.engine.settings import MiB

READ_CHUNK = 1 * MiB
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
# Reading a body straight from http.client (see direct_reader) can also raise its IncompleteRead.
READ_ERRORS: tuple[type[BaseException], ...] = (*STREAM_ERRORS, http.client.HTTPException)


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


def as_botocore_error(error: BaseException, url: str) -> BaseException:
    """An error of a body read straight from http.client as botocore raises it through urllib3, so it
    gets the same sentence (a stall is a read timeout, anything else a broken connection)."""
    translated: BaseException = error
    if isinstance(error, TimeoutError):
        translated = botocore.exceptions.ReadTimeoutError(endpoint_url=url, error=error)
    elif isinstance(error, OSError | http.client.HTTPException):
        translated = botocore.exceptions.ResponseStreamingError(error=error)
    return translated


def direct_reader(body: Any) -> Any:
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
