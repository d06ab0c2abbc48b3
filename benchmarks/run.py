"""deepracer-transfer against its peers on the workloads of issue 8 (and issue 3's own targets).

    .venv/bin/python benchmarks/run.py            # the full run: benchmarks/RESULTS.md, results.png, results.jsonl
    .venv/bin/python benchmarks/run.py --resume   # continue the last full run that was interrupted
    .venv/bin/python benchmarks/run.py --report   # re-render RESULTS.md and results.png from results.jsonl
    .venv/bin/python benchmarks/run.py --quick    # tiny workloads, one repetition: checks the harness only

Starts two SeaweedFS servers on 127.0.0.1 (DRfC's MinIO and the upload target), generates the workloads,
and runs every tool on the same data, alternating tools within each repetition. Each run goes to a
fresh bucket that is verified (every object, its size) and then deleted. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drbench import profile as profiling
from drbench.measure import Measured, run_measured
from drbench.provision import BENCH, WORK, Toolchain, machine_and_versions, provision, remove_tree
from drbench.report import render
from drbench.tools import BY_NAME, RunContext, Server, Tool
from drbench.workloads import FULL, QUICK, Payload, Workload, seed, verify
from drtransfer.locals3 import SeaweedServer
from drtransfer_cli.benchmarking import delete_prefix

MiB = 1024 * 1024
SOURCE_BUCKET = "bench-src"
RESULTS = BENCH / "results.jsonl"
RUNS = WORK / "runs"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny workloads, 1 repetition (harness check)")
    parser.add_argument("--repeat", type=int, help="repetitions per tool and workload (default 3; --quick 1)")
    parser.add_argument("--workloads", default="W1,W2,W3,W4", help="comma-separated subset of W1..W4")
    parser.add_argument("--tools", default=",".join(BY_NAME), help="comma-separated subset of " + ", ".join(BY_NAME))
    parser.add_argument("--resume", action="store_true", help="continue the newest unfinished run of this kind")
    parser.add_argument("--report", action="store_true", help="only re-render RESULTS.md/results.png")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles of deepracer-transfer")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    pool = QUICK if args.quick else FULL
    names = {n.strip().upper() for n in args.workloads.split(",") if n.strip()}
    args.workload_list = [w for w in pool if w.name in names]
    args.tool_list = [BY_NAME[n.strip()] for n in args.tools.split(",") if n.strip()]
    if not args.workload_list or len(args.workload_list) != len(names):
        parser.error(f"unknown workload in {args.workloads!r}")
    if not args.tool_list:
        parser.error("no tool selected")
    return args


# ---- state: one directory per run, one JSON line per measurement --------------------------------------


def run_dir(args: argparse.Namespace) -> Path:
    kind = "quick" if args.quick else "full"
    if args.resume:
        candidates = sorted(p for p in RUNS.glob(f"{kind}-*") if not (p / "finished").exists())
        if candidates:
            log(f"Resuming {candidates[-1].name}.")
            return candidates[-1]
        log("Nothing to resume; starting a new run.")
    path = RUNS / f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}"
    path.mkdir(parents=True)
    return path


def append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")


def done_runs(path: Path) -> set[tuple[str, str, int]]:
    if not path.exists():
        return set()
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["workload"], r["tool"], r["rep"]) for r in records if r["type"] == "run" and r["status"] == "ok"}


# ---- one measured tool run ----------------------------------------------------------------------------


def empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=bucket)  # on SeaweedFS this frees the disk space, deleting objects does not


def fresh_bucket(server: SeaweedServer, name: str) -> None:
    """Create ``name`` and write into it once: SeaweedFS allocates a new bucket's volumes at its first
    write (0.2-1 s), which would otherwise be charged to whichever tool comes first."""
    client = server.client()
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="warm-up", Body=b"x" * 1024)
    client.delete_object(Bucket=name, Key="warm-up")


def requests_between(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> int:
    """S3 requests a server answered between two of its counts (every bucket, every type)."""
    return sum(count - before.get(key, 0) for key, count in after.items())


def server_of(server: SeaweedServer, bucket: str) -> Server:
    return Server(server.url, server.access_key, server.secret_key, bucket)


def measure_once(
    tool: Tool, w: Workload, rep: int, local: SeaweedServer, upload: SeaweedServer, payload: Payload,
    tools: Toolchain, state: Path,
) -> dict[str, Any]:
    target_server = local if w.same_endpoint else upload
    bucket = f"t-{w.name.lower()}-{tool.name}-{rep}-{secrets.token_hex(3)}"
    fresh_bucket(target_server, bucket)
    work = state / "tmp" / bucket
    work.mkdir(parents=True)
    ctx = RunContext(w, server_of(local, SOURCE_BUCKET), server_of(target_server, bucket), work, tools)
    pids = [s.process.pid for s in (local, upload) if s.process is not None]
    total: Measured | None = None
    counted = [local, upload]
    before = [server.request_counts() for server in counted]
    try:
        for step in tool.steps(ctx):
            result = run_measured(step.argv, step.env, log=state / f"{w.name}-{tool.name}.log", servers=pids)
            total = result if total is None else total.then(result)
            if result.returncode != 0:
                break
        assert total is not None
        requests = sum(requests_between(b, server.request_counts()) for b, server in zip(before, counted, strict=True))
        error = (f"exit {total.returncode}: {total.stderr_tail.strip()[-300:]}" if total.returncode != 0
                 else verify(payload, target_server.client(), bucket, w.root))
    finally:
        empty_bucket(target_server.client(), bucket)
        remove_tree(work)
    seconds = total.seconds
    return {
        "type": "run", "workload": w.name, "tool": tool.name, "rep": rep,
        "status": "failed" if error else "ok", "error": error,
        "seconds": round(seconds, 3),
        "bytes": payload.bytes, "objects": payload.objects,
        "mib_per_s": round(payload.bytes / MiB / seconds, 2),
        "objects_per_s": round(payload.objects / seconds, 2),
        "cpu_seconds": round(total.cpu_seconds, 3),
        "peak_rss_mib": round(total.peak_rss / MiB, 1),
        "peak_pss_mib": round(total.peak_pss / MiB, 1),
        "server_cpu_seconds": round(total.server_cpu_seconds, 3),
        "requests": requests,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def profile_once(
    w: Workload, local: SeaweedServer, upload: SeaweedServer, tools: Toolchain, state: Path, out_dir: Path
) -> dict[str, Any]:
    target_server = local if w.same_endpoint else upload
    bucket = f"p-{w.name.lower()}-{secrets.token_hex(3)}"
    fresh_bucket(target_server, bucket)
    work = state / "tmp" / bucket
    work.mkdir(parents=True)
    ctx = RunContext(w, server_of(local, SOURCE_BUCKET), server_of(target_server, bucket), work, tools)
    try:
        (step,) = BY_NAME["drtransfer"].steps(ctx)
        raw = state / f"profile-{w.name}.raw"
        summary = profiling.profile(tools.py_spy, step.argv, step.env, raw, state / f"profile-{w.name}.log")
    finally:
        empty_bucket(target_server.client(), bucket)
        remove_tree(work)
    record: dict[str, Any] = {"type": "profile", "workload": w.name, "tool": "drtransfer", **summary}
    if "error" not in summary:
        listing = out_dir / "profiles" / f"{w.name}.txt"
        listing.parent.mkdir(exist_ok=True)
        listing.write_text(
            f"py-spy record --subprocesses --gil --rate 200 of `drtransfer upload` on {w.name}: "
            f"{summary['samples']} samples, innermost frames by share\n\n"
            + "\n".join(f"{share:6.2f}%  {frame}" for frame, share in summary["top"]) + "\n"
        )
        record["file"] = str(listing.relative_to(BENCH))
    return record


# ---- the whole run ------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.report:
        if not RESULTS.exists():
            raise SystemExit(f"No {RESULTS} yet: run the full benchmark first (benchmarks/run.py).")
        out = render(RESULTS, BENCH, BENCH / "NOTES.md")
        log(f"Wrote {out} and {BENCH / 'results.png'} from {RESULTS}.")
        return 0
    state = run_dir(args)
    results = state / "results.jsonl"
    tools = provision(state / "provision.log")
    if not results.exists():
        meta = {"type": "meta", "quick": args.quick, "repeat": args.repeat,
                "workloads": [w.name for w in args.workload_list], "tools": [t.name for t in args.tool_list],
                **machine_and_versions(tools)}
        append(results, meta)
    done = done_runs(results)
    load = os.getloadavg()[0]
    if load > 0.5 and not args.quick:
        log(f"Warning: load average {load:.2f} at start; the figures are only comparable on a quiet machine.")
    servers_dir = WORK / "servers" / state.name
    remove_tree(servers_dir)  # a resumed run regenerates the same (seeded) data on fresh servers
    local = SeaweedServer(servers_dir / "local", access_key="bench-local-key", secret_key="bench-local-secret",
                          count_requests=True)
    upload = SeaweedServer(servers_dir / "upload", access_key="bench-upload-key", secret_key="bench-upload-secret",
                           count_requests=True)
    try:
        local.start()
        upload.start()
        log(f"SeaweedFS: local {local.url}, upload {upload.url}.")
        local.create_bucket(SOURCE_BUCKET)
        payloads: dict[str, Payload] = {}
        for w in args.workload_list:
            if w.root not in {x.root for x in args.workload_list if x.name in payloads}:
                log(f"Generating {w.name}'s data under s3://{SOURCE_BUCKET}/{w.root}/ ...")
                delete_prefix(local.client(), SOURCE_BUCKET, w.root + "/")
                payloads[w.name] = seed(w, local.client(), SOURCE_BUCKET)
            else:
                payloads[w.name] = next(payloads[x.name] for x in args.workload_list
                                        if x.root == w.root and x.name in payloads)
            log(f"  {w.name}: {payloads[w.name].objects} objects, {payloads[w.name].bytes / MiB:.1f} MiB")
        append(results, {"type": "payloads",
                         **{w: {"bytes": p.bytes, "objects": p.objects} for w, p in payloads.items()}})
        for w in args.workload_list:
            applicable = [t for t in args.tool_list if t.applies(w)]
            for rep in range(1, args.repeat + 1):
                shift = (rep - 1) % len(applicable)
                for tool in applicable[shift:] + applicable[:shift]:  # alternate who goes first
                    if (w.name, tool.name, rep) in done:
                        continue
                    record = measure_once(tool, w, rep, local, upload, payloads[w.name], tools, state)
                    append(results, record)
                    status = record["status"] if record["status"] == "ok" else f"FAILED ({record['error']})"
                    log(f"{w.name} rep {rep} {tool.name:11s} {record['seconds']:8.2f} s "
                        f"{record['mib_per_s']:8.1f} MiB/s {record['objects_per_s']:8.1f} obj/s "
                        f"cpu {record['cpu_seconds']:6.2f} s rss {record['peak_rss_mib']:6.0f} MiB  {status}")
                    time.sleep(1)  # let the servers settle between tools
        out_dir = state if args.quick else BENCH
        if not args.no_profile and any(t.name == "drtransfer" for t in args.tool_list):
            for w in args.workload_list:
                log(f"Profiling deepracer-transfer on {w.name} with py-spy ...")
                try:
                    record = profile_once(w, local, upload, tools, state, out_dir)
                except Exception as error:  # a profile is an extra: never lose the measurements for it
                    record = {"type": "profile", "workload": w.name, "tool": "drtransfer", "error": repr(error)}
                append(results, record)
    finally:
        local.stop()
        upload.stop()
        remove_tree(servers_dir)
        remove_tree(state / "tmp")
    _fix_meta_payloads(results)
    (state / "finished").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    if args.quick:
        out = render(results, state)
    else:
        shutil.copy(results, RESULTS)
        out = render(RESULTS, BENCH, BENCH / "NOTES.md")
    log(f"Wrote {out}.")
    return 0


def _fix_meta_payloads(results: Path) -> None:
    """Fold the payload records into the meta record, which the report reads."""
    lines = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    meta = next(r for r in lines if r["type"] == "meta")
    for record in lines:
        if record["type"] == "payloads":
            meta.setdefault("payloads", {}).update({k: v for k, v in record.items() if k != "type"})
    results.write_text("".join(json.dumps(r) + "\n" for r in lines if r["type"] != "payloads"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
