"""``drtransfer demo --serve``: the demo's two servers keep running, the printed ``source`` line makes a
shell a DRfC shell against them, Ctrl-C stops them, and ``--keep DIR`` brings the same world back."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.infra.drfc import clean_env
from tests.infra.interrupts import with_default_sigint

BIN = Path(sys.executable).parent


def shell_env() -> dict[str, str]:
    """A clean environment whose PATH finds the installed commands, as an activated venv's does."""
    env = clean_env()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class Served:
    """``drtransfer demo --serve --keep DIR`` in the background, its stdout read line by line."""

    def __init__(self, keep: Path, state: Path) -> None:
        env = {**shell_env(), "DRTRANSFER_STATE_DIR": str(state)}
        command = with_default_sigint([str(BIN / "drtransfer"), "demo", "--serve", "--keep", str(keep)])
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def until(self, text: str, timeout: float = 180.0) -> str:
        seen = ""
        deadline = time.monotonic() + timeout
        while text not in seen:
            left = deadline - time.monotonic()
            assert left > 0 and self.process.poll() is None, f"no {text!r} in time; stdout so far:\n{seen}"
            try:
                seen += self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
        return seen

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(60)
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()
        return code


def in_shell(source: str, command: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**shell_env(), "DRTRANSFER_STATE_DIR": str(state)}
    script = f"source {source} && {command}"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=240)


def refused(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serve_prints_a_drfc_shell_stops_on_ctrl_c_and_comes_back_from_keep(tmp_path: Path) -> None:
    keep, state = tmp_path / "world", tmp_path / "state"
    served = Served(keep, state)
    try:
        text = served.until("Press Ctrl-C")
        [source] = re.findall(r"^  source (\S+)$", text, re.M)
        first = in_shell(source, "drtransfer upload -f --json --no-progress", state)
        assert first.returncode == 0, first.stderr
        [line] = [json.loads(x) for x in first.stdout.splitlines()]
        assert line["status"] == "ok" and line["source"].endswith("/rl-deepracer-sagemaker")  # run 0 activated
        assert line["skipped"] == 0
        other = in_shell(source, "drtransfer upload run-1.env -f -b --json --no-progress", state)
        assert other.returncode == 0, other.stderr
    finally:
        code = served.stop()
    assert code == 0, served.stderr
    ports = json.loads((keep / "demo.json").read_text())
    assert all(refused(f"http://127.0.0.1:{p['s3']}") for p in ports.values())  # both servers stopped

    again = Served(keep, state)
    try:
        text = again.until("Press Ctrl-C")
        assert "Restarted the demo world" in text
        [source] = re.findall(r"^  source (\S+)$", text, re.M)
        second = in_shell(source, "drtransfer upload -f --json --no-progress", state)
        assert second.returncode == 0, second.stderr
        [line] = [json.loads(x) for x in second.stdout.splitlines()]
        assert line["status"] == "ok" and line["bytes"] == 0 and line["skipped"] == line["objects"]  # kept data
    finally:
        assert again.stop() == 0, again.stderr
