"""The CPU of `drtransfer upload`'s own (parent) process on W2, for two checkouts in turn.

    .venv/bin/python benchmarks/parent_cpu.py [--runs 5] PYTHON_A PYTHON_B

PYTHON_A/B are the interpreters of two installs (``/path/to/checkout/.venv/bin/python``). One SeaweedFS
server holds W1's 8 models; every run uploads them to a fresh bucket of the same server (W2, same
endpoint), A and B alternating. Each run prints the parent's CPU (``RUSAGE_SELF`` at exit: the scheduler,
planning, start-up; not the worker processes) and the whole tree's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from drbench.workloads import FULL, seed  # noqa: E402
from drtransfer.locals3 import SeaweedServer  # noqa: E402
from drtransfer.samples import write_drfc_config  # noqa: E402

# Runs the CLI and prints its own CPU and its children's at exit (atexit also runs after click's sys.exit).
WRAPPER = """
import atexit, json, resource, sys
def report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"parent": me.ru_utime + me.ru_stime, "children": kids.ru_utime + kids.ru_stime}),
          file=sys.stderr)
atexit.register(report)
from drtransfer_cli.main import main
sys.argv = ["drtransfer", *sys.argv[1:]]
main()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("pythons", nargs=2)
    args = parser.parse_args()
    w2 = next(w for w in FULL if w.name == "W2")
    with tempfile.TemporaryDirectory() as tmp:
        server = SeaweedServer(Path(tmp) / "s3", access_key="parent-key", secret_key="parent-secret")
        server.start()
        try:
            server.create_bucket("src")
            seed(w2, server.client(), "src")
            figures: dict[str, list[tuple[float, float]]] = {p: [] for p in args.pythons}
            for run in range(args.runs):
                for python in args.pythons:
                    bucket = f"dst-{run}-{args.pythons.index(python)}"
                    server.create_bucket(bucket)
                    server.client().put_object(Bucket=bucket, Key="warm", Body=b"")  # allocate its storage
                    files = write_drfc_config(
                        Path(tmp) / f"drfc-{bucket}", local_url=server.url,
                        local_keys=(server.access_key, server.secret_key), local_bucket="src",
                        upload_url=server.url, upload_keys=(server.access_key, server.secret_key),
                        upload_bucket=bucket, runs=[(str(i), w2.model_prefix(i), w2.model_prefix(i)) for i in range(8)],
                    )  # fmt: skip
                    argv = [python, "-c", WRAPPER, "upload", *map(str, files.run_files), "--system-env",
                            str(files.system_env), "-f", "--no-progress"]  # fmt: skip
                    done = subprocess.run(argv, env=files.environ, capture_output=True, text=True, check=False)
                    if done.returncode:
                        raise SystemExit(f"{python} failed: {done.stderr[-2000:]}")
                    cpu = json.loads(done.stderr.strip().splitlines()[-1])
                    figures[python].append((cpu["parent"], cpu["parent"] + cpu["children"]))
                    parent, tree = figures[python][-1]
                    print(f"run {run} {python}: parent {parent:.2f} s, tree {tree:.2f} s", flush=True)
            for python, values in figures.items():
                parent = statistics.median(v[0] for v in values)
                tree = statistics.median(v[1] for v in values)
                print(f"{python}: median parent CPU {parent:.2f} s, tree {tree:.2f} s over {len(values)} runs")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
