"""Soak: many consecutive bulk uploads with faults injected at random, checking that nothing is ever lost
or corrupted, no multipart upload is left behind, and memory stays flat (issue 9 §9).

Two SeaweedFS servers on 127.0.0.1 (DRfC's MinIO and the upload target) sit behind loopback fault proxies
(tests/infra/faultproxy.py). Each iteration uploads every run to a fresh target prefix with the real
``drtransfer upload`` command while one fault, chosen by a seeded random generator, hits it:

  none            no fault
  resets          every k-th connection on both sides is reset after a few hundred KiB
  latency         20-60 ms before every request and response head on both sides
  slowdown        every k-th request to the target is answered 503 SlowDown
  stall           one download stops for longer than the read timeout
  kill-source     the source server is SIGKILLed mid-transfer and restarted 0.5-3 s later
  kill-target     the same for the target server
  kill-*-failfast the same with one attempt per request, so the command fails and is run again

A command that fails is run again (at most three times) without faults: it must complete and skip what
was already verified. After each iteration every target object is read back and compared with its
source (MD5), the key set must be exactly the importable layout, and no multipart upload may remain on
either server. The peak RSS of the command's process tree (parent and worker processes, sampled every
0.1 s) is recorded per iteration.

Usage (outside the test suite; takes about 10 minutes with the defaults on 2 cores)::

    .venv/bin/python benchmarks/soak.py --iterations 50 --runs 8 --seed 1 [--json soak.json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/infra/faultproxy.py

from tests.infra.faultproxy import Fault, FaultProxy  # noqa: E402

from drtransfer.locals3 import SeaweedServer  # noqa: E402
from drtransfer.samples import checkpoint_name, seed_model, write_drfc_config  # noqa: E402

MiB = 1024 * 1024
CHECKPOINT = 2  # each run has checkpoints 1 and 2; the last one is uploaded
FAULTS = {  # weights
    "none": 2,
    "resets": 3,
    "latency": 2,
    "slowdown": 3,
    "stall": 1,
    "kill-source": 1,
    "kill-target": 1,
    "kill-source-failfast": 1,
    "kill-target-failfast": 1,
}
FAIL_FAST = "client_max_attempts=1 max_attempts=2 retry_base_delay=0.2 retry_max_delay=0.5 abort_timeout=60"
COMMIT_KEYS = ("model/deepracer_checkpoints.json", "model/.coach_checkpoint", "model_metadata.json")


@dataclass
class Iteration:
    number: int
    fault: str
    attempts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    retries: int = 0
    skipped_on_rerun: int = 0
    objects: int = 0
    lost: int = 0
    corrupted: int = 0
    unexpected: int = 0
    leftover_uploads: int = 0
    detail: str = ""


class RssSampler:
    """Peak RSS of a process and its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._pid = pid
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            root = psutil.Process(self._pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a worker may end between the two calls
                        total += proc.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop.wait(self._interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.source = SeaweedServer(data_dir=workdir / "source").start()
        self.target = SeaweedServer(data_dir=workdir / "target").start()
        self.source.create_bucket("training")
        self.target.create_bucket("models")
        self.source_proxy = FaultProxy(self.source.ports["s3"]).start()
        self.target_proxy = FaultProxy(self.target.ports["s3"]).start()
        self.runs = [(str(n), f"run{n:02d}") for n in range(args.runs)]
        self.expected: dict[str, dict[str, str]] = {}  # run prefix -> relative target key -> md5

    # ---- set-up -------------------------------------------------------------------------------

    def seed(self) -> None:
        client = self.source.client()
        for number, (_run_id, prefix) in enumerate(self.runs):
            # run 0 is large (multipart sources, streamed in parts); the others are small
            scale = self.args.large_scale if number == 0 else self.args.scale
            seed_model(client, "training", prefix, checkpoints=(1, CHECKPOINT), best=1, scale=scale, seed=number)
            self.expected[prefix] = self._expected_copies(client, prefix)
        self.files = write_drfc_config(
            self.workdir / "drfc",
            local_url=self.source_proxy.url,
            local_keys=(self.source.access_key, self.source.secret_key),
            local_bucket="training",
            upload_url=self.target_proxy.url,
            upload_keys=(self.target.access_key, self.target.secret_key),
            upload_bucket="models",
            runs=[(run_id, prefix, f"{prefix}-up") for run_id, prefix in self.runs],
        )

    def _expected_copies(self, client: Any, prefix: str) -> dict[str, str]:
        def md5_of(key: str) -> str:
            body = client.get_object(Bucket="training", Key=f"{prefix}/{key}")["Body"].read()
            return hashlib.md5(body).hexdigest()

        name = checkpoint_name(CHECKPOINT)
        keys = [f"model/{name}{s}" for s in (".data-00000-of-00001", ".index", ".meta")]
        keys += [f"model/model_{CHECKPOINT}.pb", "model/model_metadata.json", "reward_function.py"]
        keys += ["ip/hyperparameters.json"]
        listing = client.list_objects_v2(Bucket="training", Prefix=f"{prefix}/metrics/").get("Contents", [])
        keys += [item["Key"].removeprefix(prefix + "/") for item in listing]
        out = {key: md5_of(key) for key in keys}
        out["model_metadata.json"] = out["model/model_metadata.json"]
        return out

    def set_target_prefixes(self, iteration: int) -> None:
        for (_run_id, prefix), run_file in zip(self.runs, self.files.run_files, strict=True):
            lines = run_file.read_text().splitlines()
            lines = [f"DR_UPLOAD_S3_PREFIX={prefix}-it{iteration:03d}" if line.startswith("DR_UPLOAD_S3_PREFIX=")
                     else line for line in lines]  # fmt: skip
            run_file.write_text("\n".join(lines) + "\n")

    # ---- one iteration --------------------------------------------------------------------------

    def reset_faults(self) -> None:
        for proxy in (self.source_proxy, self.target_proxy):
            proxy.clear()
            proxy.latency = 0.0
            proxy.reset_every = proxy.reset_after = 0
            proxy.slowdown_every = 0
            proxy.slowdown_methods = None

    def arm(self, fault: str) -> dict[str, str]:
        """Set the proxies for ``fault``; returns extra environment for the command."""
        self.reset_faults()
        env: dict[str, str] = {}
        if fault == "resets":
            self.source_proxy.reset_every = self.rng.randint(3, 6)
            self.source_proxy.reset_after = self.rng.randint(128, 1024) * 1024
            self.target_proxy.reset_every = self.rng.randint(3, 6)
            self.target_proxy.reset_after = self.rng.randint(128, 1024) * 1024
        elif fault == "latency":
            self.source_proxy.latency = self.target_proxy.latency = self.rng.uniform(0.02, 0.06)
        elif fault == "slowdown":
            self.target_proxy.slowdown_every = self.rng.randint(3, 8)
        elif fault == "stall":
            prefix = self.rng.choice(self.runs)[1]
            self.source_proxy.add(Fault("stall", "down", "GET", f"/{prefix}/model/model_{CHECKPOINT}.pb",
                                        after_bytes=32 * 1024, seconds=600))  # fmt: skip
            env["DRTRANSFER_ENGINE"] = "read_timeout=5"
        if fault.endswith("-failfast"):
            env["DRTRANSFER_ENGINE"] = FAIL_FAST
        return env

    def command(self) -> list[str]:
        exe = str(Path(sys.executable).parent / "drtransfer")
        args = [exe, "upload", *map(str, self.files.run_files), "--system-env", str(self.files.system_env)]
        return [*args, "-f", "--json", "--no-progress", "--processes", str(self.args.processes)]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DR_", "AWS_", "DRTRANSFER_"))}
        env.update(self.files.environ)
        env["DRTRANSFER_STATE_DIR"] = str(self.workdir / "state")
        env.update(extra)
        return env

    def run_once(self, record: Iteration, fault: str, extra_env: dict[str, str]) -> list[dict[str, Any]]:
        started = time.monotonic()
        process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env(extra_env), stdin=subprocess.DEVNULL,
        )  # fmt: skip
        sampler = RssSampler(process.pid)
        killer = None
        if fault.startswith("kill-"):
            server = self.source if fault.startswith("kill-source") else self.target
            killer = threading.Thread(target=self.kill_mid_transfer, args=(server, process, record), daemon=True)
            killer.start()
        try:
            out, err = process.communicate(timeout=self.args.command_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            record.detail += f" command timed out after {self.args.command_timeout} s;"
        if killer is not None:
            killer.join(60)
        record.peak_rss_mib = max(record.peak_rss_mib, sampler.stop() / MiB)
        record.seconds += time.monotonic() - started
        record.attempts += 1
        record.exit_codes.append(process.returncode)
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        record.retries += sum(int(line.get("retries", 0)) for line in lines)
        if process.returncode not in (0, 1):
            record.detail += f" exit {process.returncode}: {err.strip().splitlines()[-1:] or ''};"
        return lines

    def kill_mid_transfer(self, server: SeaweedServer, process: subprocess.Popen[str], record: Iteration) -> None:
        """Kill ``server`` once bytes land at the target (an open multipart upload or a few objects of
        this iteration), then restart it after a random pause."""
        client = self.target.client()
        prefix = f"{self.runs[0][1]}-it{record.number:03d}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            uploads = client.list_multipart_uploads(Bucket="models").get("Uploads", [])
            uploads = [u for u in uploads if ".drtransfer-write-check" not in u["Key"]]  # the permission check
            if uploads or client.list_objects_v2(Bucket="models", Prefix=prefix).get("KeyCount", 0) > 3:
                break
            time.sleep(0.05)
        if process.poll() is not None:
            record.detail += " finished before the kill;"
            return
        server.kill()
        time.sleep(self.rng.uniform(0.5, 3.0))
        server.start()

    def iteration(self, number: int) -> Iteration:
        kinds = self.args.faults or list(FAULTS)
        fault = self.rng.choices(kinds, weights=[FAULTS[kind] for kind in kinds])[0]
        record = Iteration(number, fault)
        self.set_target_prefixes(number)
        lines = self.run_once(record, fault, self.arm(fault))
        while record.exit_codes[-1] != 0 and record.attempts < 3:
            self.reset_faults()
            before = self.count_objects(number)
            lines = self.run_once(record, "none", {})
            record.skipped_on_rerun += sum(int(line.get("skipped", 0)) for line in lines)
            if before and not record.skipped_on_rerun:
                record.detail += f" re-run skipped nothing though {before} object(s) were there;"
        self.reset_faults()
        self.verify(number, record)
        return record

    def count_objects(self, number: int) -> int:
        client = self.target.client()
        return sum(
            client.list_objects_v2(Bucket="models", Prefix=f"{prefix}-it{number:03d}/").get("KeyCount", 0)
            for _run_id, prefix in self.runs
        )

    def verify(self, number: int, record: Iteration) -> None:
        client = self.target.client()
        for _run_id, prefix in self.runs:
            root = f"{prefix}-it{number:03d}/"
            found: dict[str, str] = {}
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="models", Prefix=root):
                for item in page.get("Contents", []):
                    body = client.get_object(Bucket="models", Key=item["Key"])["Body"].read()
                    found[item["Key"].removeprefix(root)] = hashlib.md5(body).hexdigest()
            expected = self.expected[prefix]
            generated = {"training_params.yaml", "model/deepracer_checkpoints.json", "model/.coach_checkpoint"}
            record.objects += len(found)
            record.lost += len((set(expected) | generated) - set(found))
            record.unexpected += len(set(found) - set(expected) - generated)
            record.corrupted += sum(1 for key, md5 in found.items() if key in expected and md5 != expected[key])
            coach = client.get_object(Bucket="models", Key=root + "model/.coach_checkpoint")["Body"].read() \
                if "model/.coach_checkpoint" in found else b""  # fmt: skip
            if coach and coach != checkpoint_name(CHECKPOINT).encode():
                record.corrupted += 1
        for server, bucket in ((self.target, "models"), (self.source, "training")):
            record.leftover_uploads += len(server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))

    def close(self) -> None:
        for proxy in (self.source_proxy, self.target_proxy):
            proxy.stop()
        for server in (self.source, self.target):
            server.stop()


def summary(records: list[Iteration], args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    rss = [r.peak_rss_mib for r in records]
    half = max(1, len(rss) // 2)
    head, tail = rss[:half], rss[half:] or rss
    quiet = [r.peak_rss_mib for r in records if r.fault in ("none", "latency")]
    faults: dict[str, int] = {}
    for record in records:
        faults[record.fault] = faults.get(record.fault, 0) + 1
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "iterations": len(records),
        "runs": args.runs,
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "faults": faults,
        "commands": sum(r.attempts for r in records),
        "failed_commands": sum(1 for r in records for code in r.exit_codes if code != 0),
        "objects_checked": sum(r.objects for r in records),
        "lost": sum(r.lost for r in records),
        "corrupted": sum(r.corrupted for r in records),
        "unexpected": sum(r.unexpected for r in records),
        "leftover_uploads": sum(r.leftover_uploads for r in records),
        "retries_reported": sum(r.retries for r in records),
        "skipped_on_rerun": sum(r.skipped_on_rerun for r in records),
        "peak_rss_mib_median_first_half": round(statistics.median(head), 1) if rss else 0,
        "peak_rss_mib_median_second_half": round(statistics.median(tail), 1) if rss else 0,
        "peak_rss_mib_fault_free_range": [round(min(quiet), 1), round(max(quiet), 1)] if quiet else [],
        "peak_rss_mib_max": round(max(rss), 1) if rss else 0,
        "problems": [f"iteration {r.number} ({r.fault}):{r.detail}" for r in records if r.detail],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=0.03, help="checkpoint size scale of the small runs")
    parser.add_argument("--large-scale", type=float, default=0.4, help="checkpoint size scale of run 0")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--faults", nargs="+", choices=list(FAULTS), help="only these faults (default: all)")
    parser.add_argument("--command-timeout", type=float, default=600.0)
    parser.add_argument("--workdir", type=Path, help="keep servers' data here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="write the summary and every iteration as JSON here")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="drtransfer-soak-"))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # stop the servers on the way out
    soak = Soak(args, workdir)
    records: list[Iteration] = []
    started = time.monotonic()
    try:
        soak.seed()
        for number in range(args.iterations):
            record = soak.iteration(number)
            records.append(record)
            print(
                f"{number:3d} {record.fault:22s} attempts={record.attempts} exit={record.exit_codes} "
                f"{record.seconds:6.1f}s rss={record.peak_rss_mib:6.1f}MiB retries={record.retries:3d} "
                f"objects={record.objects} lost={record.lost} corrupted={record.corrupted} "
                f"leftover={record.leftover_uploads}{record.detail}",
                flush=True,
            )
    finally:
        soak.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result = summary(records, args, time.monotonic() - started)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": result, "iterations": [asdict(r) for r in records]}, indent=2))
    clean = not (result["lost"] or result["corrupted"] or result["unexpected"] or result["leftover_uploads"])
    return 0 if clean and all(r.exit_codes[-1] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
