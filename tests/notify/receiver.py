"""A local HTTP receiver on 127.0.0.1 that records every POST, for the notifier tests.

Modes: ``ok`` answers ``status`` (200 by default), ``fail`` answers 500, ``stall`` accepts the request
and never answers until :meth:`Receiver.stop` (bounded by ``STALL_LIMIT``). Also the events a command
emits for a batch of two runs, one failing, built as the upload command builds them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drtransfer.events import BatchFinished, BatchStarted, CheckpointSelected, Event, ModelFailed, ModelUploaded

STALL_LIMIT = 30.0
TOKEN = "xoxT0K3Nsecret9876"  # the secret part of every webhook URL in these tests


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, mode: str = "ok", status: int = 200) -> None:
        self.mode = mode
        self.status = status
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                if receiver.mode == "stall":
                    receiver.release.wait(STALL_LIMIT)
                    self.close_connection = True
                    return
                status = 500 if receiver.mode == "fail" else receiver.status
                payload = b"" if status == 204 else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = f"/hooks/T0A1B2C3/{TOKEN}", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


FAILURE_REASON = "Access denied writing s3://upload-bucket/models/run-b/ (s3:PutObject) & <check the policy>"


def full_batch() -> list[Event]:
    """What ``drtransfer upload`` emits for two runs of which the second fails."""
    return [
        BatchStarted(command="upload", runs=["0", "1"], bytes_planned=251_658_240),
        CheckpointSelected(run_id="0", checkpoint="7_Step-4000.ckpt", explanation="last: 7_Step-4000.ckpt"),
        CheckpointSelected(
            run_id="1", checkpoint="3_Step-1500.ckpt", explanation="best: 3_Step-1500.ckpt (progress 87.5)"
        ),
        ModelUploaded(run_id="0", target="s3://upload-bucket/models/run-a", bytes=125_829_120, seconds=12.5, skipped=2),
        ModelFailed(run_id="1", target="s3://upload-bucket/models/run-b", reason=FAILURE_REASON),
        BatchFinished(
            command="upload",
            succeeded=1,
            failed=1,
            bytes=125_829_120,
            seconds=14.2,
            failures=[f"run 1 (models/run-b): {FAILURE_REASON}"],
        ),
    ]
