"""Requests and wall time of `drtransfer upload` on W2 (8 models, same endpoint), per bucket and type.

    .venv/bin/python benchmarks/control_requests.py [--runs 3] PYTHON...

One SeaweedFS server with its request counters (``SeaweedServer(count_requests=True)``) holds W1's 8
models; each run uploads them to a fresh bucket with each interpreter in turn and prints the requests it
served in between (source and target bucket, ``request_counts()`` before and after), the command's wall
time and the parent's CPU (``RUSAGE_SELF`` at exit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from drbench.workloads import FULL, seed  # noqa: E402
from drtransfer.locals3 import SeaweedServer  # noqa: E402
from drtransfer.samples import write_drfc_config  # noqa: E402
from parent_cpu import WRAPPER  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("pythons", nargs="+")
    args = parser.parse_args()
    w2 = next(w for w in FULL if w.name == "W2")
    with tempfile.TemporaryDirectory() as tmp:
        server = SeaweedServer(Path(tmp) / "s3", access_key="req-key", secret_key="req-secret", count_requests=True)
        server.start()
        try:
            server.create_bucket("src")
            seed(w2, server.client(), "src")
            walls: dict[str, list[float]] = {p: [] for p in args.pythons}
            cpus: dict[str, list[float]] = {p: [] for p in args.pythons}
            for run in range(args.runs):
                for n, python in enumerate(args.pythons):
                    bucket = f"dst-{run}-{n}"
                    server.create_bucket(bucket)
                    keys = (server.access_key, server.secret_key)
                    files = write_drfc_config(
                        Path(tmp) / f"drfc-{bucket}", local_url=server.url, local_keys=keys, local_bucket="src",
                        upload_url=server.url, upload_keys=keys, upload_bucket=bucket,
                        runs=[(str(i), w2.model_prefix(i), w2.model_prefix(i)) for i in range(8)],
                    )  # fmt: skip
                    argv = [python, "-c", WRAPPER, "upload", *map(str, files.run_files), "--system-env",
                            str(files.system_env), "-f", "--no-progress"]  # fmt: skip
                    before = server.request_counts()
                    started = time.monotonic()
                    done = subprocess.run(argv, env=files.environ, capture_output=True, text=True, check=False)
                    wall = time.monotonic() - started
                    after = server.request_counts()
                    if done.returncode:
                        raise SystemExit(f"{python} failed: {done.stderr[-2000:]}")
                    cpu = json.loads(done.stderr.strip().splitlines()[-1])["parent"]
                    walls[python].append(wall)
                    cpus[python].append(cpu)
                    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                    by_type: dict[str, int] = {}
                    for (_bucket, kind), count in delta.items():
                        if count:
                            by_type[kind] = by_type.get(kind, 0) + count
                    total = sum(by_type.values())
                    detail = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
                    print(f"run {run} {python}: {wall:.2f} s wall, parent CPU {cpu:.2f} s, {total} requests ({detail})")
                    print(f"    per bucket/type: {sorted((k, v) for k, v in delta.items() if v)}", flush=True)
            for python in args.pythons:
                print(
                    f"{python}: median wall {statistics.median(walls[python]):.2f} s, "
                    f"parent CPU {statistics.median(cpus[python]):.2f} s over {args.runs} runs"
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
