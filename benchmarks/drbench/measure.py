"""Run one command and measure its whole process tree: wall seconds, CPU seconds, peak RSS.

CPU comes from ``wait4`` (exact for the command and every descendant it waited for) or, when larger,
from sampling the tree (descendants that were never waited for, e.g. forkserver workers). Peak RSS is
the largest sum of RSS over the tree seen by :class:`drtransfer_cli.benchmarking.TreeMonitor` (every 50 ms);
peak PSS (shared pages split between the processes sharing them) is recorded next to it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from drtransfer_cli.benchmarking import TreeMonitor


@dataclass
class Measured:
    returncode: int
    seconds: float
    cpu_seconds: float
    peak_rss: int
    peak_pss: int
    server_cpu_seconds: float
    stderr_tail: str = ""

    def then(self, other: Measured) -> Measured:
        """Two commands run one after the other, as one tool run."""
        return Measured(
            other.returncode if self.returncode == 0 else self.returncode,
            self.seconds + other.seconds,
            self.cpu_seconds + other.cpu_seconds,
            max(self.peak_rss, other.peak_rss),
            max(self.peak_pss, other.peak_pss),
            self.server_cpu_seconds + other.server_cpu_seconds,
            self.stderr_tail or other.stderr_tail,
        )


def _cpu_of(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def run_measured(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    log: Path,
    servers: Sequence[int] = (),
    timeout: float = 1800.0,
    cwd: Path | None = None,
) -> Measured:
    """Run ``argv`` in its own session; stdout and stderr go to ``log``. ``servers`` are S3 server pids
    whose CPU use over the same interval is reported next to the client's."""
    server_before = _cpu_of(servers)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), env=dict(env), stdout=out, stderr=out, stdin=subprocess.DEVNULL, cwd=cwd,
            start_new_session=True,
        )
        monitor = TreeMonitor(proc.pid).start()
        timer = threading.Timer(timeout, lambda: _kill_group(proc.pid))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C of the harness: the tool runs in its own session, stop it too
            _kill_group(proc.pid)
            os.waitpid(proc.pid, 0)
            monitor.stop()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        tree = monitor.stop()
        _kill_group(proc.pid)  # nothing the tool left behind keeps running into the next measurement
    server_cpu = _cpu_of(servers) - server_before
    cpu = max(usage.ru_utime + usage.ru_stime, tree.sampled_cpu)
    # Not ru_maxrss: it counts the pages the child shared with this (large) harness before exec.
    peak = tree.peak_rss
    tail = ""
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
    return Measured(proc.returncode, seconds, cpu, peak, tree.peak_pss, server_cpu, tail)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
