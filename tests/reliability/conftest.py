"""Fault-injection fixtures: DRfC setups whose endpoints may be killable SeaweedFS servers or fault
proxies, a live view of a running command's stderr, and checks of what a target holds.

Commands run as subprocesses of the installed ``drtransfer`` (as a user runs them). ``DRTRANSFER_ENGINE``
shortens retries and timeouts where a test waits for a failure; everything else uses the defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import Identity, SeaweedServer
from drtransfer.samples import checkpoint_name
from tests.conftest import list_multipart_uploads, list_tree, start_seaweed, unique_bucket
from tests.infra.drfc import DrfcSetup, seed_drfc
from tests.infra.faultproxy import FaultProxy

RUNS = (("0", "alpha"), ("1", "beta"), ("2", "gamma"))
COMMIT_KEYS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json")
# Fail fast where a test waits for a failure (a dead server): 3 s without progress, two operation attempts.
FAIL_FAST = (
    "client_max_attempts=1 max_attempts=2 stall_deadline=3 retry_base_delay=0.2 retry_max_delay=0.5 "
    "connect_timeout=2 read_timeout=10 abort_timeout=90"
)
# Identities of the guarded server: one without the write permission, one without the list permission, and one
# with recognisable keys that the secrets tests look for in everything the commands produce.
NO_WRITE = Identity("no-write", "NOWRITEAK0000001", "no-write-secret-0001", ["Read", "List"])
NO_LIST = Identity("no-list", "NOLISTAK00000001", "no-list-secret-00001", ["Read", "Write"])
SECRET = Identity("secret", "AKIDRTSECRETKEY7Q3X", "drt-SECRET-key-9f8e7d6c5b4a3210", ["Read", "Write", "List"])


@dataclass
class Setup(DrfcSetup):
    """A DRfC setup whose commands keep their state in :attr:`state`, with views of what a run holds."""

    @property
    def state(self) -> Path:
        return Path(self.environ["DRTRANSFER_STATE_DIR"])

    def command(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run ``drtransfer args...`` with ``extra`` added to its environment."""
        done = self.run(*args, env=self.env(**extra))
        if os.environ.get("RELIABILITY_SHOW"):  # debugging aid: pytest -s shows what the command said
            print(f"$ drtransfer {' '.join(args)}\n{done.stdout}{done.stderr}")
        return done

    def start(self, *args: str, **extra: str) -> Running:
        """Start ``drtransfer args...`` in the background with ``extra`` added to its environment."""
        return Running(self.popen(*args, env=self.env(**extra)))

    def prefix(self, run_id: str) -> str:
        return dict(self.runs)[run_id]

    def target(self, run_id: str) -> str:
        return self.upload_prefixes[run_id]

    def target_tree(self, run_id: str) -> dict[str, bytes]:
        target = self.target(run_id)
        tree = list_tree(self.upload, self.upload_bucket, target + "/")
        return {key.removeprefix(target + "/"): body for key, body in tree.items()}

    def source_tree(self, run_id: str) -> dict[str, bytes]:
        prefix = self.prefix(run_id)
        tree = list_tree(self.local, self.local_bucket, prefix + "/")
        return {key.removeprefix(prefix + "/"): body for key, body in tree.items()}


class Running:
    """A command in the background whose stderr lines are collected as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.out: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, args=(process.stderr, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(process.stdout, self.out), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._lock:
                into.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr_lines(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines())

    @property
    def stdout(self) -> str:
        with self._lock:
            return "\n".join(self.out)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        """Poll ``condition`` until it holds; fail when the command ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the command ended before {what}:\n{self.stderr}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.stderr}")

    def finish(self, timeout: float = 240.0) -> int:
        """Wait for the command (killing it if it overruns ``timeout``) and return its exit code."""
        try:
            self.process.wait(timeout)
        finally:
            self.stop()
        for reader in self._readers:
            reader.join(10)
        return int(self.process.returncode)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def make_setup(
    directory: Path,
    local: SeaweedServer,
    upload: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
    *,
    local_url: str | None = None,
    upload_url: str | None = None,
    upload_keys: tuple[str, str] | None = None,
    scale: float | dict[str, float] = 0.02,
    runs: Sequence[tuple[str, str]] = RUNS,
    checkpoints: tuple[int, ...] = (1, 2),
) -> Setup:
    """Seed ``runs`` (each with ``checkpoints``, the last one chosen; ``scale`` per run id or for all) on
    ``local`` and write DRfC files whose endpoints are ``local_url``/``upload_url`` (a proxy) or the servers
    themselves."""
    return seed_drfc(
        directory / "drfc", local, upload, local_bucket, upload_bucket, runs,
        checkpoints=checkpoints, best=checkpoints[0], scale=scale,
        local_url=local_url, upload_url=upload_url, upload_keys=upload_keys,
        environ={"DRTRANSFER_STATE_DIR": str(directory / "state")}, kind=Setup,
    )  # fmt: skip


@pytest.fixture
def setup(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> Setup:
    """Three small runs on the session servers, addressed directly."""
    return make_setup(tmp_path, local_s3, upload_s3, local_bucket, upload_bucket)


@pytest.fixture
def proxy_for() -> Iterator[Callable[[SeaweedServer], FaultProxy]]:
    """Start a fault proxy in front of a server's S3 port; every proxy is stopped after the test."""
    proxies: list[FaultProxy] = []

    def start(server: SeaweedServer) -> FaultProxy:
        proxy = FaultProxy(server.ports["s3"]).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[[str], SeaweedServer]]:
    """A SeaweedFS server of the test's own (to kill and restart); stopped after the test."""
    servers: list[SeaweedServer] = []

    def start(name: str) -> SeaweedServer:
        server = start_seaweed(tmp_path / name)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(graceful=False)  # its data is thrown away


@pytest.fixture(scope="session")
def guarded_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A target server with restricted identities (no write, no list) and one with recognisable secrets."""
    server = start_seaweed(tmp_path_factory.mktemp("weed-guarded"), extra_identities=[NO_WRITE, NO_LIST, SECRET])
    yield server
    server.stop(graceful=False)


@pytest.fixture
def guarded_bucket(guarded_s3: SeaweedServer) -> Iterator[str]:
    name = unique_bucket("guarded")
    guarded_s3.create_bucket(name)
    yield name
    guarded_s3.client().delete_bucket(Bucket=name)  # SeaweedFS deletes non-empty buckets too


# ---- what a target holds ------------------------------------------------------------------------


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def expected_copies(source: dict[str, bytes], number: int) -> dict[str, bytes]:
    """Target key (relative) -> bytes for every object the plan copies from the source (plan.py)."""
    name = checkpoint_name(number)
    out = {f"model/{name}{s}": source[f"model/{name}{s}"] for s in (".data-00000-of-00001", ".index", ".meta")}
    out[f"model/model_{number}.pb"] = source[f"model/model_{number}.pb"]
    for key in ("model/model_metadata.json", "reward_function.py", "ip/hyperparameters.json"):
        out[key] = source[key]
    out["model_metadata.json"] = source["model/model_metadata.json"]
    out.update({k: v for k, v in source.items() if k.startswith("metrics/")})
    return out


def check_target_model(setup: Setup, run_id: str, number: int) -> tuple[str, set[str]]:
    """Whatever a target prefix holds is right: every copied object has the source's bytes and, when any
    commit object is there, every planned object is there too. Returns ("complete" | "partial" | "empty",
    the keys present)."""
    tree = setup.target_tree(run_id)
    copies = expected_copies(setup.source_tree(run_id), number)
    for key, body in tree.items():
        assert key in copies or key in ("training_params.yaml", *COMMIT_KEYS), f"unexpected object {key}"
        if key in copies:
            assert md5(body) == md5(copies[key]), f"{setup.target(run_id)}/{key} differs from its source"
    planned = set(copies) | {"training_params.yaml", *COMMIT_KEYS}
    if any(key in tree for key in COMMIT_KEYS):
        assert set(tree) == planned, f"commit objects present, but missing: {sorted(planned - set(tree))}"
        index = json.loads(tree["model/deepracer_checkpoints.json"])
        assert index["last_checkpoint"]["name"] == checkpoint_name(number)
        assert tree["model/.coach_checkpoint"] == checkpoint_name(number).encode()
        return "complete", set(tree)
    return ("partial" if tree else "empty"), set(tree)


def no_uploads_left(server: SeaweedServer, bucket: str) -> None:
    assert list_multipart_uploads(server, bucket) == [], "a multipart upload was left behind"


def single_sentence(line: str) -> None:
    """One line, one sentence: ends with a full stop, no traceback, no Python repr noise."""
    assert line.rstrip().endswith("."), line
    assert "Traceback" not in line and "\n" not in line, line
