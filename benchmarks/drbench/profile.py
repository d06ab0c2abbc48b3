"""A py-spy profile of one ``drtransfer upload`` (every process), summarised by innermost frame."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

# First match wins; matched against the innermost frame's "function (file:line)".
GROUPS = (
    ("TLS/socket I/O", ("ssl.py", "socket.py", "selectors.py")),
    ("HTTP (http.client, urllib3)", ("http/client.py", "urllib3/")),
    ("SigV4 signing and hashing", ("botocore/auth.py", "hashlib", "hmac.py", "md5", "sha256")),
    ("checksums (deepracer-transfer)", ("drtransfer/engine/checksums.py",)),
    ("deepracer-transfer engine", ("drtransfer/engine/",)),
    ("deepracer-transfer other", ("drtransfer/", "drtransfer_cli/", "drtransfer_plugins/")),
    ("s3transfer", ("s3transfer/",)),
    ("botocore other (serialising, parsing, events)", ("botocore/",)),
    ("multiprocessing/queues/threads", ("multiprocessing/", "queue.py", "threading.py", "concurrent/")),
    ("imports and start-up", ("<frozen importlib", "importlib/")),
)


def group_of(frame: str) -> str:
    for name, needles in GROUPS:
        if any(n in frame for n in needles):
            return name
    return "other"


def summarise(raw: Path) -> dict[str, Any]:
    """py-spy ``--format raw`` lines are ``frame;frame;...;innermost COUNT``."""
    leaves: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaves[stack.split(";")[-1].strip()] += int(count)
    total = sum(leaves.values()) or 1
    groups: Counter[str] = Counter()
    for frame, samples in leaves.items():
        groups[group_of(frame)] += samples
    return {
        "samples": total,
        "groups": [(g, 100 * c / total) for g, c in groups.most_common()],
        "top": [(f, 100 * c / total) for f, c in leaves.most_common(25)],
    }


def profile(py_spy: str, argv: list[str], env: dict[str, str], raw: Path, log: Path) -> dict[str, Any]:
    """Run ``argv`` under ``py-spy record --subprocesses`` and summarise; {"error": ...} when it fails."""
    command = [py_spy, "record", "--subprocesses", "--rate", "200", "--format", "raw", "--output", str(raw),
               "--", *argv]
    with log.open("ab") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, timeout=1800)
    if done.returncode != 0 or not raw.exists():
        return {"error": f"py-spy exited {done.returncode}; see {log}"}
    return summarise(raw)
