"""The lean data path: GET, PUT and UploadPart bodies of target-verified copies without botocore.

botocore costs about 2.4 ms of CPU per request and copies every body through urllib3; its hashing is gone
(see streaming.py), so the rest of a copy's client CPU is mostly its request machinery. Here each worker
thread keeps persistent HTTP/1.1 connections per host, requests are signed by botocore's own SigV4 signer
(``UNSIGNED-PAYLOAD``: every body is verified by the target, see below) with the credentials botocore
resolved, and a body goes from the GET socket to the PUT socket through a pipe with ``os.splice`` on plain
HTTP (the bytes never enter the process) or through one reused buffer with ``recv_into`` on TLS.

Only copies that the target verifies go this way: a source with a plain-MD5 ETag (sent as Content-MD5,
a mismatch is refused with ``BadDigest``) and the parts of an ``md5-N`` source (the part ETags the target
reports must combine to the source ETag before the upload is completed). Everything else, the control
plane (listing, HEAD, multipart create/complete/abort), redirects and proxies stay on botocore; any
answer this module does not handle (:class:`Unsupported`) sends the task to the botocore path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import botocore.exceptions

from drtransfer.endpoints import Endpoint, tls_ca_bundle
from drtransfer.engine.buffers import READ_CHUNK
from drtransfer.engine.checksums import clean_etag, content_md5, is_plain_md5, multipart_count, multipart_etag
from drtransfer.engine.housekeeping import abort_quietly
from drtransfer.engine.lean_signer import Signer, make_signer
from drtransfer.engine.messages import CompleteTask, OpDone, OpTask, PartDone, PartSpec, PartTask, UploadRef
from drtransfer.engine.multipart import (
    STORED_HEADERS,
    complete,
    create_upload,
    source_parts,
    stored_headers,
    target_metadata,
)
from drtransfer.engine.runtime import Meter, Runtime, TaskError
from drtransfer.engine.strategy import Strategy, guess_layout
from drtransfer.operations import CopyObject, ObjectLocation

# What botocore's legacy retry handler sends again (its _retry.json: 5xx, throttling, S3's RequestTimeout).
RETRY_STATUS = {500, 502, 503, 504, 509}
RETRY_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled", "PriorRequestNotComplete",
    "RequestTimeout", "RequestTimeoutException", "InternalError",
}  # fmt: skip
MAX_HEAD = 64 * 1024  # response head limit: S3 heads are about 1 KiB
PIPE_SIZE = READ_CHUNK  # bytes per splice; the pipe is grown to this (Linux's default limit is 1 MiB)
SPLICE = hasattr(os, "splice")
_FLAGS = (getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)) if SPLICE else 0
_MORE = getattr(os, "SPLICE_F_MORE", 4)
_T = TypeVar("_T")


class Unsupported(Exception):
    """An answer the lean path does not handle (a redirect, part ETags that are not MD5s ...): the task goes
    to the botocore path, which does."""


class _Again(Exception):
    """A request botocore would send again (``reason``: the error code or exception name it reports)."""

    def __init__(self, reason: str, failure: TaskError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure


class _Broken(Exception):
    """A socket error on one side of a body transfer (``side``: "source" or "target")."""

    def __init__(self, side: str, error: BaseException) -> None:
        super().__init__(side, error)
        self.side = side
        self.error = error


class Conn:
    """One persistent HTTP/1.1 connection. The socket keeps Python's timeout (non-blocking underneath), so
    a silent peer raises ``TimeoutError`` after ``read_timeout`` in every read, write and splice."""

    def __init__(self, scheme: str, host: str, port: int, connect_timeout: float, read_timeout: float) -> None:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = scheme == "https"
        if self.tls:
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(read_timeout)
        self.sock = sock
        self.timeout = read_timeout
        self.pending = bytearray()  # bytes received after the last response head
        self.reusable = True

    def close(self) -> None:
        self.reusable = False
        with contextlib.suppress(OSError):
            self.sock.close()

    def dropped(self) -> bool:
        """True when the server closed the idle connection (readable with nothing asked: EOF or garbage)."""
        if self.pending:
            return True
        try:
            ready, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)

    def send_head(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> None:
        """The request head, and ``body`` (a small one, held in memory) in the same write."""
        lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Status and headers (names in lower case) of the next response; 100 Continue is skipped."""
        while True:
            end = self.pending.find(b"\r\n\r\n")
            while end < 0:
                if len(self.pending) > MAX_HEAD:
                    raise ConnectionError("the response head is too long")
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError("the server closed the connection")
                self.pending += chunk
                end = self.pending.find(b"\r\n\r\n", max(0, len(self.pending) - len(chunk) - 3))
            head = bytes(self.pending[:end]).decode("latin-1")
            del self.pending[: end + 4]
            status_line, *lines = head.split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            if status != 100:
                break
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("connection", "").lower() == "close" or status_line.startswith("HTTP/1.0"):
            self.reusable = False
        return status, headers

    def read_body(self, headers: Mapping[str, str]) -> bytes:
        """A small body (an answer or an error document) read whole."""
        if "content-length" in headers:
            return self._exactly(int(headers["content-length"]))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self._line().split(b";")[0], 16)
                out += self._exactly(size)
                self._line()
                if not size:
                    return bytes(out)
        self.reusable = False  # delimited by the end of the connection
        out = bytearray(self.pending)
        self.pending.clear()
        while chunk := self.sock.recv(65536):
            out += chunk
        return bytes(out)

    def _fill(self, count: int) -> None:
        while len(self.pending) < count:
            chunk = self.sock.recv(max(65536, count - len(self.pending)))
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self.pending += chunk

    def _exactly(self, count: int) -> bytes:
        self._fill(count)
        out = bytes(self.pending[:count])
        del self.pending[:count]
        return out

    def _line(self) -> bytes:
        while (end := self.pending.find(b"\r\n")) < 0:
            self._fill(len(self.pending) + 1)
        line = bytes(self.pending[:end])
        del self.pending[: end + 2]
        return line


_tls: dict[str, ssl.SSLContext] = {}


def _tls_context() -> ssl.SSLContext:
    """Verified TLS with the CA bundle botocore's clients use (``AWS_CA_BUNDLE``, the profile's
    ``ca_bundle``, ``REQUESTS_CA_BUNDLE``, else botocore's own): a server with a private CA that botocore
    trusts is trusted here too."""
    bundle = tls_ca_bundle()
    context = _tls.get(bundle)
    if context is None:
        directory = os.path.isdir(bundle)
        made = ssl.create_default_context(cafile=None if directory else bundle, capath=bundle if directory else None)
        context = _tls.setdefault(bundle, made)
    return context


@dataclass(frozen=True)
class CopyJob:
    """GET ``source`` (``range_``: start, end) and send its body as the PUT of ``target`` + ``query``.

    write: names the PUT in sentences ("write s3://…", "upload part 3 of s3://…").
    put_headers: ``f(get_headers) -> headers`` adds the PUT's headers, or returns None to drop the copy
        (:class:`Unsupported`).
    """

    source: ObjectLocation
    target: ObjectLocation
    write: str
    query: str = ""
    range_: tuple[int, int] | None = None
    put_headers: Any = None


@dataclass(frozen=True)
class Address:
    """Where one object is: connection, request target and Host header, as the endpoint's client addresses
    it (path style for a custom endpoint URL, virtual-hosted on AWS unless the bucket name forbids it)."""

    scheme: str
    host: str
    port: int
    netloc: str
    path: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def address(endpoint: Endpoint, bucket: str, key: str) -> Address:
    quoted = quote(key, safe="/~")
    if endpoint.url:
        parts = urlsplit(endpoint.url)
        scheme, base = parts.scheme or "http", parts.path.rstrip("/")
        host, netloc = parts.hostname or "", parts.netloc
        path = f"{base}/{bucket}/{quoted}"
    else:
        scheme, netloc = "https", f"s3.{endpoint.region}.amazonaws.com"
        if "." not in bucket and bucket == bucket.lower():
            netloc, path = f"{bucket}.{netloc}", f"/{quoted}"
        else:
            path = f"/{bucket}/{quoted}"
        host, parts = netloc, urlsplit(f"https://{netloc}")
    port = parts.port or (443 if scheme == "https" else 80)
    return Address(scheme, host, port, netloc, path)


class LeanPath:
    """The lean data path of one :class:`Runtime`: connections per thread, a signer per endpoint."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Conn] = []
        self._signers: dict[str, Signer] = {}
        self.disabled: set[str] = set()  # endpoints sent to botocore after an Unsupported answer
        self._direct: dict[str, bool] = {}  # endpoint -> static credentials and no proxy

    def usable(self, *names: str) -> bool:
        """True when every endpoint can be reached directly: static credentials and no proxy."""
        for name in names:
            if name in self.disabled:
                return False
            direct = self._direct.get(name)
            if direct is None:  # once per endpoint: reading the proxy settings scans the whole environment
                direct = self._direct[name] = self._reachable(self.rt.endpoints[name])
            if not direct:
                return False
        return True

    @staticmethod
    def _reachable(endpoint: Endpoint) -> bool:
        if endpoint.credentials is None:
            return False
        scheme = urlsplit(endpoint.url).scheme if endpoint.url else "https"
        host = urlsplit(endpoint.url).hostname if endpoint.url else "amazonaws.com"
        return not (urllib.request.getproxies().get(scheme) and not urllib.request.proxy_bypass(host or ""))

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    # ---- connections and requests ------------------------------------------------------------------

    def _conn(self, where: Address, method: str) -> Conn:
        """This thread's connection to the host for ``method``: a copy's GET and PUT may go to one server."""
        conns: dict[tuple[str, str, str, int], Conn] = self._local.__dict__.setdefault("conns", {})
        key = (method, where.scheme, where.host, where.port)
        conn = conns.get(key)
        if conn is not None and (not conn.reusable or conn.dropped()):
            conn.close()
            conn = None
        if conn is None:
            settings = self.rt.settings
            conn = Conn(where.scheme, where.host, where.port, settings.connect_timeout, settings.read_timeout)
            conns[key] = conn
            with self._lock:
                self._conns = [c for c in self._conns if c.reusable]
                self._conns.append(conn)
        return conn

    def _signed(self, name: str, method: str, where: Address, query: str, headers: dict[str, str]) -> dict[str, str]:
        signer = self._signers.get(name)
        if signer is None:
            endpoint = self.rt.endpoints[name]
            assert endpoint.credentials is not None
            signer = self._signers.setdefault(name, make_signer(endpoint.credentials, endpoint.region))
        return signer.sign(method, where.url + query, where.path + query, {"Host": where.netloc, **headers})

    def open(
        self, location: ObjectLocation, method: str, query: str, headers: dict[str, str], body: bytes = b""
    ) -> Conn:
        """Connect (or reuse this thread's connection) and send the signed request head (and ``body``,
        a small one held in memory)."""
        where = address(self.rt.endpoints[location.endpoint], location.bucket, location.key)
        signed = self._signed(location.endpoint, method, where, query, headers)
        conn = self._conn(where, method)
        conn.send_head(method, where.path + query, signed, body)
        return conn

    def answer(self, conn: Conn, location: ObjectLocation, action: str, operation: str) -> dict[str, str]:
        """Read the response head; an error status is a :class:`TaskError` (botocore's sentence for its
        code), a redirect is :class:`Unsupported`."""
        status, headers = conn.read_head()
        if status < 300:
            return headers
        body = conn.read_body(headers) if status != 304 else b""
        if 300 <= status < 400:
            raise Unsupported(f"redirect {status}")
        raise self.refusal(status, body, location, action, operation)

    def refusal(self, status: int, body: bytes, location: ObjectLocation, action: str, operation: str) -> Exception:
        """The error an answer of ``status`` with the error document ``body`` is: :class:`_Again` when
        botocore would send the request again (throttled, 5xx), else the :class:`TaskError`."""
        code, message = _error_code(body, status)
        error = botocore.exceptions.ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
        )
        failure = self.rt.error(error, location.endpoint, location.bucket, action)
        if status in RETRY_STATUS or code in RETRY_CODES:
            return _Again(code, failure)
        return failure

    def request(
        self, location: ObjectLocation, method: str, headers: dict[str, str], body: bytes, action: str,
        operation: str,
    ) -> tuple[dict[str, str], bytes]:  # fmt: skip
        """One request whose body and answer are small and held whole (a server-side copy, a PUT of bytes
        the plan holds); the answer's headers and body. The caller sends it again (:meth:`resending`)."""
        headers = {"Content-Length": str(len(body)), **headers}
        conn, answered = self.ask(location, method, "", headers, action, operation, body)
        try:
            return answered, conn.read_body(answered)
        except BaseException as error:
            conn.close()
            if isinstance(error, OSError):
                raise self.unanswered(error, location, action) from None
            raise

    def ask(
        self, location: ObjectLocation, method: str, query: str, headers: dict[str, str], action: str,
        operation: str, body: bytes = b"",
    ) -> tuple[Conn, dict[str, str]]:  # fmt: skip
        """Send a request and read its answer's head (:meth:`answer`); a socket error is
        :meth:`unanswered`. The connection is closed when this raises."""
        conn: Conn | None = None
        try:
            try:
                conn = self.open(location, method, query, headers, body)
                return conn, self.answer(conn, location, action, operation)
            except OSError as error:
                raise self.unanswered(error, location, action) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    def unanswered(self, error: BaseException, location: ObjectLocation, action: str) -> TaskError:
        """A socket error of a request (not of a body being read): not sent again here. As on the botocore
        path (outage.py), a request that got no answer is the engine's to wait for and report."""
        return self.broken(error, location, action)

    def broken(self, error: BaseException, location: ObjectLocation, action: str) -> TaskError:
        """A socket error as botocore reports it: a stall is a read timeout, a refused connect cannot reach
        the endpoint, anything else broke the connection."""
        url = address(self.rt.endpoints[location.endpoint], location.bucket, location.key).url
        translated: BaseException
        if isinstance(error, TimeoutError):
            translated = botocore.exceptions.ReadTimeoutError(endpoint_url=url, error=error)
        elif isinstance(error, ConnectionRefusedError | socket.gaierror):
            translated = botocore.exceptions.EndpointConnectionError(endpoint_url=url, error=error)
        elif isinstance(error, ssl.SSLError):
            translated = botocore.exceptions.SSLError(endpoint_url=url, error=error)
        else:
            translated = botocore.exceptions.ConnectionClosedError(endpoint_url=url, error=error)
        failure = self.rt.error(translated, location.endpoint, location.bucket, action)
        failure.__cause__ = translated
        return failure

    # ---- copies ------------------------------------------------------------------------------------

    def copy(self, job: CopyJob, meter: Meter) -> tuple[dict[str, str], dict[str, str]]:
        """Run ``job``; returns the GET's and the PUT's response headers (sent again as :meth:`resending`
        says)."""
        return self.resending(job.write, meter, lambda: self._copy_once(job, meter))

    def resending(self, action: str, meter: Meter, once: Callable[[], _T]) -> _T:
        """``once()``, sent again as botocore would.

        As on the botocore path, a throttled or failed answer (``SlowDown``, 5xx) is sent again up to
        ``client_max_attempts`` times with botocore's legacy random exponential backoff and reported as
        the client's retries (for ``action``); a request without an answer (refused, reset, stalled) and
        a GET body that breaks or stalls are the engine's to retry, so it can wait for the endpoint and
        say so."""
        reasons: list[str] = []
        endpoint = ""  # of the last answer that asked for a retry
        try:
            for attempt in range(self.rt.settings.client_max_attempts + 1):
                moved = meter.total
                try:
                    return once()
                except _Again as again:
                    meter.rewind(meter.total - moved)
                    if attempt == self.rt.settings.client_max_attempts:
                        raise again.failure from None  # the engine's to retry (and report) from here
                    reasons.append(again.reason)
                    endpoint = again.failure.endpoint
                    self.backoff(attempt)
            raise AssertionError("unreachable")
        finally:
            self.rt.client_retried(len(reasons), tuple(reasons), action, endpoint)

    def backoff(self, attempt: int) -> None:
        self.rt.sleep(random.random() * 2**attempt)  # botocore legacy: rand x 2^(n-1)

    def _copy_once(self, job: CopyJob, meter: Meter) -> tuple[dict[str, str], dict[str, str]]:
        source, range_ = job.source, job.range_
        get, got = self.get(source, range_)
        try:
            size = int(got.get("content-length", "-1"))
            extra = job.put_headers(got) if job.put_headers else {}
            if extra is None or size < 0:
                raise Unsupported("not a target-verified copy")
            answered = self.put_from(get, source, job.target, job.write, job.query, size, meter, extra)
        except BaseException:
            get.close()  # its body may be half read: never reuse it
            raise
        return got, answered

    def get(
        self, source: ObjectLocation, range_: tuple[int, int] | None = None, size: int | None = None
    ) -> tuple[Conn, dict[str, str]]:
        """Send the GET of ``source`` (``range_``: start, end) and read its response head, which must
        announce the range's length (or ``size``, for a whole object); the body waits in the connection,
        which the caller closes unless it read it all."""
        ranged = {"Range": f"bytes={range_[0]}-{range_[1] - 1}"} if range_ else {}
        conn, got = self.ask(source, "GET", "", ranged, f"read {source.url}", "GetObject")
        expected = range_[1] - range_[0] if range_ else size
        if expected is not None and int(got.get("content-length", "-1")) != expected:
            conn.close()
            raise TaskError(
                f"Reading {source.url} on the {self.rt.describe(source)} returned a different size than the "
                f"{expected} bytes announced."
            )
        return conn, got

    def put_from(
        self, get: Conn, source: ObjectLocation, target: ObjectLocation, write: str, query: str, size: int,
        meter: Meter, extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:  # fmt: skip
        """PUT ``target`` + ``query`` with the next ``size`` body bytes of ``get`` (the GET of ``source``);
        the answer's headers.
        ``get`` is positioned after those bytes when this returns, and half read when it raises."""
        put: Conn | None = None
        done = False
        try:
            try:
                put = self.open(target, "PUT", query, {"Content-Length": str(size), **(extra or {})})
            except OSError as error:
                raise self.unanswered(error, target, write) from None
            try:
                self._pump(get, put, size, meter)
            except _Broken as broken:
                if broken.side == "source":
                    raise self.broken(broken.error, source, f"read {source.url}") from None
                # the target may have answered (refused) before taking the whole body
                with contextlib.suppress(OSError, ValueError):
                    put.sock.settimeout(1.0)
                    self.answer(put, target, write, "PutObject")
                raise self.unanswered(broken.error, target, write) from None
            try:
                answered = self.answer(put, target, write, "PutObject")
                put.read_body(answered)
            except OSError as error:
                raise self.unanswered(error, target, write) from None
            done = True
            return answered
        finally:
            if put is not None and not (done and put.reusable):
                put.close()  # a body may be half sent: never reuse it

    def _pump(self, src: Conn, dst: Conn, size: int, meter: Meter) -> None:
        """Move ``size`` body bytes from ``src`` to ``dst``: first what came with the response head, then
        by splice (plain HTTP) or through this thread's buffer (TLS)."""
        if src.pending:
            head = bytes(src.pending[:size])
            del src.pending[:size]
            self.rt.pace(len(head))
            _side("target", dst.sock.sendall, head)
            size -= len(head)
            meter.add(len(head))
        if SPLICE and not src.tls and not dst.tls:
            self._splice(src, dst, size, meter)
            return
        buffer: bytearray = self._local.__dict__.setdefault("buffer", bytearray(READ_CHUNK))
        view = memoryview(buffer)
        try:
            while size:
                self.rt.check_cancel()
                count = _side("source", src.sock.recv_into, view[: min(size, len(buffer), self.rt.read_step)])
                if not count:
                    raise _Broken("source", ConnectionResetError("the source closed the connection"))
                self.rt.pace(count)  # --bandwidth-limit (no limit: returns at once)
                _side("target", dst.sock.sendall, view[:count])
                size -= count
                meter.add(count)
        finally:
            view.release()

    def _splice(self, src: Conn, dst: Conn, size: int, meter: Meter) -> None:
        pipe: tuple[int, int] | None = getattr(self._local, "pipe", None)
        if pipe is None:
            pipe = os.pipe()
            with contextlib.suppress(OSError, AttributeError):
                import fcntl

                fcntl.fcntl(pipe[1], fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            self._local.pipe = pipe
        out, into = pipe
        src_fd, dst_fd = src.sock.fileno(), dst.sock.fileno()
        clean = False
        step = min(PIPE_SIZE, self.rt.read_step)  # smaller under --bandwidth-limit, for a smooth rate
        try:
            while size:
                self.rt.check_cancel()
                count = _splice_some(src_fd, into, min(size, step), select.POLLIN, src.timeout, "source")
                if not count:
                    raise _Broken("source", ConnectionResetError("the source closed the connection"))
                self.rt.pace(count)  # before the bytes leave the pipe for the target
                left = count
                while left:
                    left -= _splice_some(out, dst_fd, left, select.POLLOUT, dst.timeout, "target", dst_fd)
                size -= count
                meter.add(count)
            clean = True
        finally:
            if not clean:  # bytes may be left in the pipe: never reuse it
                self._local.pipe = None
                for fd in pipe:
                    os.close(fd)


def _splice_some(src: int, dst: int, count: int, event: int, timeout: float, side: str, wait_fd: int = -1) -> int:
    """One splice of at most ``count`` bytes, waiting up to ``timeout`` for the socket to be ready."""
    fd = src if wait_fd < 0 else wait_fd
    while True:
        try:
            return os.splice(src, dst, count, flags=_FLAGS | (_MORE if side == "target" else 0))
        except BlockingIOError:
            poller = select.poll()
            poller.register(fd, event)
            if not poller.poll(timeout * 1000):
                raise _Broken(side, TimeoutError("the server did not answer in time")) from None
        except OSError as error:
            raise _Broken(side, error) from None


def _side(side: str, function: Any, data: Any) -> int:
    try:
        return int(function(data) or 0)
    except OSError as error:
        raise _Broken(side, error) from None


def _error_code(body: bytes, status: int) -> tuple[str, str]:
    try:
        root = ElementTree.fromstring(body)
        return root.findtext("Code") or str(status), root.findtext("Message") or ""
    except ElementTree.ParseError:
        return str(status), ""


@contextlib.contextmanager
def falling_back(meter: Meter) -> Iterator[None]:
    """Around a lean request: on :class:`Unsupported` (a redirect, part ETags that are not MD5s ...), take
    back its progress and let the caller go on with botocore."""
    before = meter.total
    try:
        yield
    except Unsupported:
        meter.rewind(meter.total - before)


# ---- the copies the worker runs through it ---------------------------------------------------------


def copy_small(lean: LeanPath, task: OpTask, op: CopyObject, meter: Meter) -> OpDone:
    """One GET spliced into one PUT whose Content-MD5 is the source's plain-MD5 ETag."""
    rt, source, target = lean.rt, op.source.location, op.target
    etag = ""

    def put_headers(got: Mapping[str, str]) -> dict[str, str] | None:
        nonlocal etag
        etag = clean_etag(got.get("etag"))
        if not is_plain_md5(etag):
            return None
        head = head_of(got)
        headers = {"Content-MD5": content_md5(bytes.fromhex(etag)), "Content-Type": head["ContentType"]}
        headers.update({STORED_HEADERS[name]: value for name, value in stored_headers(head).items()})
        headers.update({f"x-amz-meta-{k}": v for k, v in target_metadata(head, etag).items()})
        return headers

    try:
        _, answered = lean.copy(CopyJob(source, target, f"write {target.url}", put_headers=put_headers), meter)
    except TaskError as error:
        if error.code == "BadDigest":
            raise rt.refused_source(source, etag) from None
        raise
    rt.check_written(target, answered.get("etag"), etag)
    return OpDone(task.task_id, "copied", meter.total, Strategy.STREAM.value, clean_etag(answered.get("etag")))


def server_copy(lean: LeanPath, source: ObjectLocation, target: ObjectLocation, action: str, meter: Meter) -> str:
    """CopyObject of ``source`` to ``target`` (one store) keeping its metadata; the copy's ETag as answered.
    A 200 answer whose document is an error (S3 reports a copy that failed after it started that way) or
    is empty is a 500, sent again as botocore does."""
    headers = {
        "x-amz-copy-source": quote(f"{source.bucket}/{source.key}", safe="-._~/"),
        "x-amz-metadata-directive": "COPY",
    }

    def once() -> str:
        _, answered = lean.request(target, "PUT", headers, b"", action, "CopyObject")
        document = answered.strip()  # S3 may pad a long copy's answer with spaces to keep it alive
        try:
            root = ElementTree.fromstring(document) if document else None
        except ElementTree.ParseError:
            root = None
        if root is None or root.tag.rpartition("}")[2] == "Error":
            raise lean.refusal(500, document, target, action, "CopyObject")
        return root.findtext("{*}ETag") or ""

    return lean.resending(action, meter, once)


def put_bytes(lean: LeanPath, target: ObjectLocation, body: bytes, headers: dict[str, str], meter: Meter) -> str:
    """PutObject of ``body`` (bytes the plan holds) with ``headers`` (its Content-MD5 and type); the ETag."""
    write = f"write {target.url}"
    answered, _ = lean.resending(write, meter, lambda: lean.request(target, "PUT", headers, body, write, "PutObject"))
    return answered.get("etag", "")


def copy_part(lean: LeanPath, task: PartTask, meter: Meter) -> PartDone:
    """A ranged GET spliced into an UploadPart; the target's part ETag (its MD5 of what it stored) is what
    the scheduler combines and compares with the source's ``md5-N`` ETag."""
    source, upload, part = task.source, task.upload, task.part
    target = ObjectLocation(upload.endpoint, upload.bucket, upload.key)
    query = _part_query(upload, part.number)
    write = f"upload part {part.number} of s3://{upload.bucket}/{upload.key}"
    _, answered = lean.copy(CopyJob(source, target, write, query, (part.start, part.end)), meter)
    etag = _part_md5(lean, upload.endpoint, answered)
    return PartDone(task.task_id, part.number, etag, bytes.fromhex(etag), None, part.size)


def copy_multipart(lean: LeanPath, task: OpTask, op: CopyObject, meter: Meter) -> OpDone:
    """An ``md5-N`` source in its own part layout with one GET and no HEAD: the GET's head gives the ETag,
    type and metadata the upload is created with, and its body is spliced part by part into successive
    UploadParts. The upload is completed only when the target's part ETags (its MD5s of what it stored)
    combine to the source's ETag; on any failure it is aborted, so nothing half-written remains.

    The layout is guessed (:func:`guess_layout`); when the part ETags do not combine, ``HeadObject
    PartNumber=1`` tells the real one: a different layout is copied again, the same one means the bytes
    changed on the way (the object fails its verification and the engine retries it)."""
    rt, source = lean.rt, op.source.location
    listed, size = clean_etag(op.source.etag), op.source.size
    count = multipart_count(listed) or 0
    parts = guess_layout(size, count, rt.settings.part_size)
    assert parts is not None  # strategy.one_get said so
    for guessed in (True, False):
        upload, etags = _parts_once(lean, task, op, parts, meter)
        if multipart_etag(bytes.fromhex(etag) for _, etag in etags) == listed:
            try:
                finish = CompleteTask(task.task_id, task.model, task.op_index, upload, etags, listed, None, size)
                done = complete(rt, finish)
            except BaseException:
                abort_quietly(rt, upload)
                raise
            return OpDone(task.task_id, "copied", size, Strategy.STREAM_MULTIPART.value, done.etag, upload)
        abort_quietly(rt, upload)
        meter.rewind(meter.total)
        real = source_parts(rt, source, size, count) if guessed else parts
        if real == parts:
            break
        parts = real
    raise TaskError(
        f"Verification of {source.url} failed: the bytes moved do not match its ETag {listed}; the upload was aborted."
    )


def _parts_once(
    lean: LeanPath, task: OpTask, op: CopyObject, parts: tuple[PartSpec, ...], meter: Meter
) -> tuple[UploadRef, tuple[tuple[int, str], ...]]:
    """Create the upload once the GET answered and send every part from that GET; the upload and its part
    ETags. A part the target answers with ``SlowDown`` or a 5xx is sent again as any lean request is
    (:meth:`LeanPath.resending`), from a ranged GET that starts there, the parts before it kept; any
    other failure aborts the upload and raises."""
    rt, source, target = lean.rt, op.source.location, op.target
    listed, size = clean_etag(op.source.etag), op.source.size
    read = f"read {source.url}"
    upload: UploadRef | None = None
    get: Conn | None = None
    etags: list[tuple[int, str]] = []

    def send(part: PartSpec, write: str) -> dict[str, str]:
        nonlocal get, upload
        conn, started = get, upload
        if conn is None:
            span = None if part.start == 0 else (part.start, size)
            conn, got = lean.resending(read, meter, functools.partial(lean.get, source, span, size))
            get = conn
            if clean_etag(got.get("etag")) != listed:
                if started is None:  # changed since the listing: looked at again (HEAD), as before
                    raise Unsupported("the source changed")
                raise TaskError(f"{source.url} changed while it was copied; the upload was aborted.")
            if started is None:
                started = upload = create_upload(rt, task.task_id, target, head_of(got), listed)
        assert started is not None
        query = _part_query(started, part.number)
        into = ObjectLocation(started.endpoint, started.bucket, started.key)
        try:
            return lean.put_from(conn, source, into, write, query, part.size, meter)
        except _Again:
            conn.close()  # positioned somewhere in this part: the resend starts again from its first byte
            get = None
            raise

    try:
        for part in parts:
            write = f"upload part {part.number} of {target.url}"
            answered = lean.resending(write, meter, functools.partial(send, part, write))
            etags.append((part.number, _part_md5(lean, target.endpoint, answered)))
        assert upload is not None
        return upload, tuple(etags)
    except BaseException:
        if get is not None:
            get.close()
        if upload is not None:
            abort_quietly(rt, upload)
        raise


def _part_query(upload: UploadRef, number: int) -> str:
    """The query of UploadPart ``number`` of ``upload``."""
    return f"?uploadId={quote(upload.upload_id, safe='-_.~')}&partNumber={number}"


def _part_md5(lean: LeanPath, endpoint: str, answered: Mapping[str, str]) -> str:
    """An UploadPart answer's ETag, which must be the MD5 of what the target stored; else the endpoint's
    part ETags prove nothing and its parts go through botocore (hashed) from now on."""
    etag = clean_etag(answered.get("etag"))
    if not is_plain_md5(etag):
        lean.disabled.add(endpoint)
        raise Unsupported("part ETags are not MD5s")
    return etag


def head_of(got: Mapping[str, str]) -> dict[str, Any]:
    """What a HEAD would have said (type, user metadata, the stored headers), from a GET's response head."""
    metadata = {k[len("x-amz-meta-") :]: v for k, v in got.items() if k.startswith("x-amz-meta-")}
    head: dict[str, Any] = {"ContentType": got.get("content-type") or "binary/octet-stream", "Metadata": metadata}
    for name, header in STORED_HEADERS.items():
        if got.get(header.lower()):
            head[name] = got[header.lower()]
    return head


__all__ = [
    "CopyJob", "LeanPath", "Unsupported", "address", "copy_multipart", "copy_part", "copy_small", "falling_back",
    "put_bytes", "server_copy",
]  # fmt: skip
