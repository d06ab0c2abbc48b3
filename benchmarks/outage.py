"""Outage benchmark (issue 14 §4): W1 uploaded with the real ``drtransfer upload`` command, clean and with
the target SeaweedFS SIGKILLed ``--at`` seconds into the transfer (after the first object landed there:
the checks before it, a few seconds on a loaded machine, would otherwise meet a dead server and exit 2)
and restarted on the same port and data ``--outage`` seconds later, alternating in the same run.
Goal: outage total <= clean total + outage + 5 s.

Usage (about 5 minutes on 2 cores)::

    .venv/bin/python benchmarks/outage.py [--repeat 3] [--at 2] [--outage 20] [--json outage.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from drbench.workloads import FULL, seed, verify  # noqa: E402
from drtransfer.locals3 import SeaweedServer  # noqa: E402
from drtransfer.samples import write_drfc_config  # noqa: E402

DRTRANSFER = str(Path(sys.executable).with_name("drtransfer"))


def upload(
    work: Path, source: SeaweedServer, target: SeaweedServer, bucket: str, log: Path | None
) -> tuple[float, int, str]:
    """One W1 upload into ``bucket``: (seconds, exit code, last lines of stderr)."""
    w1 = FULL[0]
    files = write_drfc_config(
        work / "drfc",
        local_url=source.url, local_keys=(source.access_key, source.secret_key), local_bucket="bench",
        upload_url=target.url, upload_keys=(target.access_key, target.secret_key), upload_bucket=bucket,
        runs=[(str(i), w1.model_prefix(i), w1.model_prefix(i)) for i in range(w1.models)],
    )  # fmt: skip
    argv = [DRTRANSFER, "upload", *map(str, files.run_files), "--system-env", str(files.system_env), "-f",
            "--no-progress", *(["-v"] if log else [])]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DR_", "AWS_", "DRTRANSFER_"))}
    env |= files.environ | {"DRTRANSFER_STATE_DIR": str(work / "state")}
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.monotonic() - started
    if log:
        log.mkdir(parents=True, exist_ok=True)
        (log / f"{work.name}.log").write_text(done.stderr)
    return seconds, done.returncode, "\n".join(done.stderr.splitlines()[-5:])


def outage(target: SeaweedServer, bucket: str, at: float, length: float, times: dict[str, float]) -> threading.Thread:
    """Kill ``target`` ``at`` s after the first object landed in ``bucket``, restart it ``length`` s later;
    ``times``: when each happened (monotonic), and when the restarted server answered."""

    def run() -> None:
        client = target.client()
        while client.list_objects_v2(Bucket=bucket, MaxKeys=2).get("KeyCount", 0) < 2:  # beside "warm"
            time.sleep(0.05)
        time.sleep(at)
        target.kill()
        times["killed"] = time.monotonic()
        time.sleep(length)
        times["restarting"] = time.monotonic()
        target.start()  # same port, same data; returns once it answers
        times["back"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--at", type=float, default=2.0, help="seconds after the start the target is killed")
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the target stays down")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--log", type=Path, help="keep each upload's -v stderr in this directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    runs: dict[str, list[float]] = {"clean": [], "outage": []}
    downs: list[float] = []  # seconds the target did not answer (kill to the restarted server's first answer)
    with tempfile.TemporaryDirectory(prefix="drt-outage-") as tmp:
        work = Path(tmp)
        source = SeaweedServer(data_dir=work / "source").start()
        target = SeaweedServer(data_dir=work / "target").start()
        try:
            source.create_bucket("bench")
            payload = seed(FULL[0], source.client(), "bench")
            print(f"W1: {payload.objects} objects, {payload.bytes / 2**20:.0f} MiB", flush=True)
            for n in range(args.repeat):
                for mode in ("clean", "outage"):
                    bucket = f"{mode}-{n}"
                    target.create_bucket(bucket)
                    target.client().put_object(Bucket=bucket, Key="warm", Body=b"x")  # allocate its storage
                    times: dict[str, float] = {}
                    killer = outage(target, bucket, args.at, args.outage, times) if mode == "outage" else None
                    started = time.monotonic()
                    seconds, code, tail = upload(work / f"{mode}-{n}", source, target, bucket, args.log)
                    if killer is not None:
                        killer.join()
                        down = times["back"] - times["killed"]
                        after = started + seconds - times["back"]
                        print(
                            f"  killed at {times['killed'] - started:.1f} s, answering again {down:.1f} s later "
                            f"(restart took {times['back'] - times['restarting']:.1f} s), done {after:.1f} s after"
                        )
                        downs.append(down)
                    problem = verify(payload, target.client(), bucket, FULL[0].root)
                    if code or problem:
                        print(f"{mode} {n}: FAILED (exit {code}): {problem or tail}", flush=True)
                        continue
                    runs[mode].append(seconds)
                    print(f"{mode} {n}: {seconds:.1f} s", flush=True)
                    target.client().delete_bucket(Bucket=bucket)  # SeaweedFS frees its disk
        finally:
            source.stop()
            target.stop()
    if not runs["clean"] or not runs["outage"]:
        return 1
    clean, out = statistics.median(runs["clean"]), statistics.median(runs["outage"])
    goal = clean + args.outage + 5
    print(
        f"median clean {clean:.1f} s, outage {out:.1f} s; goal <= {goal:.1f} s: {'met' if out <= goal else 'NOT met'}"
    )
    if args.json:
        result: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "cpus": os.cpu_count(), "at": args.at, "outage": args.outage, "runs": runs,
            "median_clean": clean, "median_outage": out, "goal": goal, "target_down": downs,
        }  # fmt: skip
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if out <= goal else 1


if __name__ == "__main__":
    sys.exit(main())
