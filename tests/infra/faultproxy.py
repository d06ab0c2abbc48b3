"""A loopback HTTP/1.1 fault proxy for S3 tests: corrupt, reset, stall, throttle or refuse.

It relays TCP between a client and an upstream server on 127.0.0.1 and understands just enough HTTP
(request/response heads, Content-Length and chunked bodies, HEAD, ``100 Continue``) to aim faults at
bodies. Because it forwards the client's bytes unchanged (Host included), SigV4 signatures stay valid.

In tests::

    with FaultProxy(upstream_port) as proxy:
        proxy.add(Fault("corrupt", direction="down", method="GET", path_contains="/key", count=1))
        endpoint = Endpoint(name="src", url=proxy.url, ...)

Fault kinds:
  corrupt  flip one byte of a matching request (``direction="up"``) or response (``"down"``) body
  reset    close both sides with RST once ``after_bytes`` of the matching body went through
  stall    stop forwarding a matching body for ``seconds`` (read-timeout tests)
A fault fires for the requests it matches (method, substring of the path), ``count`` times (0 =
always). ``proxy.bandwidth`` caps bytes/s per connection and direction; ``proxy.down = True`` refuses
new connections.

Whole-connection and HTTP-level faults (attributes, changeable while the proxy runs):
  latency         seconds added before each request head and each response head is forwarded
  reset_every     every k-th new connection is reset (RST) once ``reset_after`` bytes (heads and
                  bodies, both directions) went through it
  slowdown_every  every k-th request is answered ``503 SlowDown`` (S3's throttling error) by the proxy
                  itself, never reaching the server; ``slowdown_methods`` limits which methods count
Counters: ``connections``, ``resets``, ``slowdowns``, ``requests``; ``seen``: (method, path) of every
request forwarded to the server.
Standalone: ``python tests/infra/faultproxy.py LISTEN UPSTREAM [--bandwidth B/s] [--latency S]
[--reset-every K --reset-after B] [--slowdown-every K]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

Direction = Literal["up", "down"]


@dataclass
class Fault:
    kind: Literal["corrupt", "reset", "stall"]
    direction: Direction = "down"
    method: str | None = None
    path_contains: str = ""
    count: int = 1  # 0 = every match
    min_body: int = 1  # only bodies at least this long
    offset: int = 0  # corrupt: byte offset into the body (clamped to the body)
    after_bytes: int = 0  # reset/stall: body bytes forwarded first
    seconds: float = 5.0  # stall
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, direction: Direction, length: int | None) -> bool:
        if self.direction != direction or (self.count and self.fired >= self.count):
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return length is None or length >= self.min_body


class _Reset(Exception):
    pass


SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>faultproxy</RequestId></Error>"
)


@dataclass
class _Connection:
    """Per-connection state: the bytes it may still carry before its reset (None: no reset)."""

    budget: int | None = None

    def spend(self, count: int) -> None:
        if self.budget is not None:
            self.budget -= count
            if self.budget < 0:
                raise _Reset


class FaultProxy:
    """Runs an asyncio proxy in a background thread; safe to change faults from the test thread."""

    def __init__(self, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.listen_port = listen_port
        self.faults: list[Fault] = []
        self.bandwidth = 0  # bytes/s per connection and direction; 0 = unlimited
        self.down = False
        self.latency = 0.0
        self.reset_every = 0
        self.reset_after = 0
        self.slowdown_every = 0
        self.slowdown_methods: set[str] | None = None
        self.connections = 0
        self.requests = 0
        self.resets = 0
        self.slowdowns = 0
        self.fired: list[str] = []
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _claim(self, method: str, path: str, direction: Direction, length: int | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, direction, length):
                    fault.fired += 1
                    self.fired.append(f"{fault.kind} {direction} {method} {path}")
                    return fault
        return None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._serve())
        loop.run_forever()
        loop.close()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        self._ready.set()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            if self._server:
                self._server.close()
            for writer in list(self._writers):
                _rst(writer)
            # Connections still relaying (a stall sleeping for minutes) end here, not as destroyed tasks.
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            if others:
                await asyncio.wait(others, timeout=2)

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(close(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- relaying ----------------------------------------------------------------------------

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            await self._relay(client_r, client_w)
        except asyncio.CancelledError:  # stop(): end quietly (a cancelled handler task logs an error)
            _rst(client_w)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = _Connection()
        if self.reset_every and self.connections % self.reset_every == 0:  # this connection's number
            conn.budget = self.reset_after
        if self.down:
            _rst(client_w)
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _rst(client_w)
            return
        self._writers |= {client_w, up_w}
        requests: deque[tuple[str, str]] = deque()
        arrived = asyncio.Event()
        tasks = [
            asyncio.ensure_future(self._requests(client_r, up_w, requests, arrived, conn, client_w)),
            asyncio.ensure_future(self._responses(up_r, client_w, requests, arrived, conn)),
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = any(t.exception() for t in done if not t.cancelled())
        if any(isinstance(t.exception(), _Reset) for t in done if not t.cancelled()) and conn.budget is not None:
            self.resets += 1
        if failed:
            for task in pending:
                task.cancel()
            _rst(client_w)
            _rst(up_w)
        else:
            await asyncio.gather(*pending, return_exceptions=True)
            for writer in (client_w, up_w):
                with contextlib.suppress(Exception):
                    writer.close()
        self._writers -= {client_w, up_w}

    def _slow_down_now(self, method: str) -> bool:
        with self._lock:
            if not self.slowdown_every or (self.slowdown_methods and method.upper() not in self.slowdown_methods):
                return False
            self.requests += 1
            if self.requests % self.slowdown_every:
                return False
            self.slowdowns += 1
            return True

    async def _slow_down(
        self, reader: asyncio.StreamReader, client_w: asyncio.StreamWriter, method: str, head: bytes
    ) -> bool:
        """Answer ``503 SlowDown`` without asking the server; False when the connection must close
        (the client waits for ``100 Continue`` and will not send the body it announced)."""
        length, chunked = _framing(head)
        expects = b"\r\nexpect: 100-continue" in head.lower()
        if not expects:  # consume the body the client already sends, so the connection stays in step
            await self._body(reader, _Sink(), length, chunked, None)  # type: ignore[arg-type]
        body = b"" if method == "HEAD" else SLOWDOWN_BODY
        answer = (
            f"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {len(SLOWDOWN_BODY)}\r\n"
            f"x-amz-request-id: faultproxy\r\nConnection: {'close' if expects else 'keep-alive'}\r\n\r\n"
        ).encode("latin-1")
        client_w.write(answer + body)
        await client_w.drain()
        return not expects

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        requests: deque[tuple[str, str]],
        arrived: asyncio.Event,
        conn: _Connection,
        client_w: asyncio.StreamWriter,
    ) -> None:
        while True:
            head = await _read_head(reader)
            if head is None:
                with contextlib.suppress(Exception):
                    writer.write_eof()
                return
            first = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            method, path = first[0], first[1] if len(first) > 1 else ""
            if self._slow_down_now(method):
                self.fired.append(f"slowdown {method} {path}")
                if await self._slow_down(reader, client_w, method, head):
                    continue
                with contextlib.suppress(Exception):
                    writer.write_eof()
                return
            if self.latency:
                await asyncio.sleep(self.latency)
            conn.spend(len(head))
            with self._lock:
                self.seen.append((method, path))
            requests.append((method, path))
            arrived.set()
            writer.write(head)
            await writer.drain()
            length, chunked = _framing(head)
            fault = self._claim(method, path, "up", length)
            await self._body(reader, writer, length, chunked, fault, conn=conn)

    async def _responses(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        requests: deque[tuple[str, str]],
        arrived: asyncio.Event,
        conn: _Connection,
    ) -> None:
        while True:
            head = await _read_head(reader)
            if head is None:
                with contextlib.suppress(Exception):
                    writer.write_eof()
                return
            status = int(head.split(b" ", 2)[1])
            if self.latency and not 100 <= status < 200:
                await asyncio.sleep(self.latency)
            conn.spend(len(head))
            writer.write(head)
            await writer.drain()
            if 100 <= status < 200:
                continue  # 100 Continue: the final response follows
            while not requests:
                arrived.clear()
                await arrived.wait()
            method, path = requests.popleft()
            if method == "HEAD" or status in (204, 304):
                continue
            length, chunked = _framing(head)
            fault = self._claim(method, path, "down", length)
            until_close = length is None and not chunked
            await self._body(reader, writer, length, chunked, fault, until_close=until_close, conn=conn)

    async def _body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        length: int | None,
        chunked: bool,
        fault: Fault | None,
        until_close: bool = False,
        conn: _Connection | None = None,
    ) -> None:
        state = {"sent": 0}
        conn = conn or _Connection()
        if chunked:
            while True:
                line = await reader.readline()
                writer.write(line)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    writer.write(await reader.readuntil(b"\r\n"))  # no trailers from S3 servers
                    await writer.drain()
                    return
                await self._copy(reader, writer, size, fault, state, conn)
                writer.write(await reader.readexactly(2))
        if until_close:
            await self._copy(reader, writer, None, fault, state, conn)
            return
        if length:
            await self._copy(reader, writer, length, fault, state, conn)

    async def _copy(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        count: int | None,
        fault: Fault | None,
        state: dict[str, int],
        conn: _Connection,
    ) -> None:
        left = count
        while left is None or left > 0:
            data = await reader.read(65536 if left is None else min(65536, left))
            if not data:
                if left is None:
                    return
                raise ConnectionError("peer closed mid-body")
            if left is not None:
                left -= len(data)
            conn.spend(len(data))
            start = state["sent"]
            state["sent"] += len(data)
            if fault is not None and start + len(data) > fault.after_bytes:
                if fault.kind == "reset":
                    raise _Reset
                if fault.kind == "stall":
                    await asyncio.sleep(fault.seconds)
                    fault = None
                elif fault.kind == "corrupt" and start <= fault.offset < start + len(data):
                    mutable = bytearray(data)
                    mutable[fault.offset - start] ^= 0xFF
                    data = bytes(mutable)
                    fault = None
            writer.write(data)
            await writer.drain()
            if self.bandwidth:
                await asyncio.sleep(len(data) / self.bandwidth)


class _Sink:
    """A writer that drops what it is given (the body of a request the proxy answers itself)."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None


def _framing(head: bytes) -> tuple[int | None, bool]:
    length: int | None = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="loopback HTTP fault proxy")
    parser.add_argument("listen", type=int)
    parser.add_argument("upstream", type=int)
    parser.add_argument("--bandwidth", type=int, default=0, help="bytes/s per connection and direction")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each request and response head")
    parser.add_argument("--reset-every", type=int, default=0, help="reset every k-th connection")
    parser.add_argument("--reset-after", type=int, default=0, help="... after this many bytes")
    parser.add_argument("--slowdown-every", type=int, default=0, help="answer every k-th request 503 SlowDown")
    args = parser.parse_args()
    proxy = FaultProxy(args.upstream, args.listen)
    proxy.bandwidth = args.bandwidth
    proxy.latency = args.latency
    proxy.reset_every, proxy.reset_after = args.reset_every, args.reset_after
    proxy.slowdown_every = args.slowdown_every
    proxy.start()
    print(f"proxy {proxy.url} -> 127.0.0.1:{args.upstream}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    proxy.stop()


if __name__ == "__main__":
    main()
