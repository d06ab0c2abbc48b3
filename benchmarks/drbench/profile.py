"""A py-spy profile of one ``drtransfer upload`` (every process), summarised by activity.

Only samples of a thread holding the GIL are kept (``--gil``): that is where the client spends Python CPU.
Without it, threads blocked in socket reads dominate the samples and hide the work. Native code that
releases the GIL (hashlib on large buffers, socket I/O in the kernel) is not in these samples.

Each sample's stack is walked from the innermost frame outwards; the first frame that belongs to a known
activity names the sample's activity (so ``json.decode`` under botocore's loader counts as client
creation, ``socket.recv_into`` under http.client as socket I/O).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

# (activity, substrings of a frame "function (file:line)"); the innermost matching frame wins.
GROUPS = (
    ("pickling messages between processes", ("copyreg.py", "pickle.py", "reduction.py")),
    ("TLS/socket I/O", ("ssl.py", "socket.py", "selectors.py", "urllib3/util/wait.py")),
    ("SigV4 signing and hashing", ("botocore/auth.py", "hashlib", "hmac.py")),
    ("creating botocore clients (loading the S3 model)", ("botocore/loaders.py", "create_client", "ClientCreator")),
    ("HTTP (http.client, urllib3)", ("http/client.py", "urllib3/")),
    ("checksums (deepracer-transfer)", ("drtransfer/engine/checksums.py",)),
    ("s3transfer", ("s3transfer/",)),
    ("botocore: serialising, parsing, events", ("botocore/",)),
    ("waiting on queues, threads, processes", ("multiprocessing/", "queue.py", "threading.py", "concurrent/")),
    ("deepracer-transfer engine", ("drtransfer/engine/",)),
    ("deepracer-transfer other", ("drtransfer/", "drtransfer_cli/", "drtransfer_plugins/")),
    ("imports and start-up", ("<frozen importlib", "importlib/", "<module>")),
)


def activity(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in GROUPS:
            if any(n in frame for n in needles):
                return name
    if len(frames) <= 1:
        return "no Python frame (native code)"
    return "other"


def summarise(raw: Path) -> dict[str, Any]:
    """py-spy ``--format raw`` lines are ``process …;frame;…;innermost COUNT``."""
    leaves: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f.strip() for f in stack.split(";")]
        leaf = frames[-1] if len(frames) > 1 else "(no Python frame)"
        leaves[leaf] += int(count)
        groups[activity(frames)] += int(count)
    total = sum(leaves.values()) or 1
    return {
        "samples": total,
        "groups": [(g, 100 * c / total) for g, c in groups.most_common()],
        "top": [(f, 100 * c / total) for f, c in leaves.most_common(25)],
    }


def profile(py_spy: str, argv: list[str], env: dict[str, str], raw: Path, log: Path) -> dict[str, Any]:
    """Run ``argv`` under ``py-spy record --subprocesses`` and summarise; {"error": ...} when it fails."""
    command = [py_spy, "record", "--subprocesses", "--gil", "--rate", "200", "--format", "raw", "--output", str(raw),
               "--", *argv]
    with log.open("ab") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, timeout=1800)
    if done.returncode != 0 or not raw.exists():
        return {"error": f"py-spy exited {done.returncode}; see {log}"}
    return summarise(raw)
