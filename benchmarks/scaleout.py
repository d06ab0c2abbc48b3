"""Scale-out: W1 on 1, 2 and 3 Ray nodes, each node's traffic through a bandwidth-capped link of its own.

    .venv/bin/python benchmarks/scaleout.py --repetitions 2   # benchmarks/scaleout.json and scaleout.png
    .venv/bin/python benchmarks/scaleout.py --scale 1         # W1's models at full size (545 MiB; slow)

One machine cannot show what several machines' networks add, so each node gets a link of its own: a
fault proxy (tests/infra/faultproxy.py) in front of the source that only that node's actors use. The proxy
caps bytes/s *per connection*, so each node runs one actor with one thread (``--concurrency 1``): one
connection at a time per node, and the cap is the node's link. (With more threads the largest single
object, one GET on one capped connection, becomes the critical path and hides the nodes.) W1's eight
models are placed round-robin on the N nodes in use (``ModelPlan.node``, what ``DRTRANSFER_NODE`` sets),
so the busiest node has 8, 4 and 3 models: the ideal speed-ups are 2x and 2.67x. A Ray
cluster (``ray.cluster_utils.Cluster``: a head and 3 worker nodes on 127.0.0.1) runs the ``ray``
executor; the source and the target are SeaweedFS servers on 127.0.0.1. Each run goes to a fresh bucket
that is checked (every object, its size).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.infra.faultproxy
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address on 127.0.0.1 (read at import)

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from tests.infra.faultproxy import FaultProxy  # noqa: E402

from drbench.workloads import FULL, seed  # noqa: E402
from drtransfer.engine import EngineSettings, MiB, TransferSubscriber, run_transfer  # noqa: E402
from drtransfer.engine.executor import ExecutorChoice  # noqa: E402
from drtransfer.locals3 import SeaweedServer  # noqa: E402
from drtransfer.operations import CopyObject, ModelPlan, ModelResult, ObjectLocation, SourceObject  # noqa: E402
from drtransfer_plugins.ray_executor import ray_executor  # noqa: E402

BENCH = Path(__file__).resolve().parent
NODES = 3
LOOPBACK = "127.0.0.1"


def start_cluster(temp_dir: str) -> Cluster:
    os.environ["RAY_TMPDIR"] = temp_dir
    os.makedirs(f"{temp_dir}/ray")
    head = {"num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False,
            "object_store_memory": 80 * MiB, "temp_dir": f"{temp_dir}/ray"}  # fmt: skip
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for n in range(NODES):
        cluster.add_node(num_cpus=1, resources={f"node-{n}": 1}, object_store_memory=80 * MiB, node_ip_address=LOOPBACK)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    return cluster


class FirstByte(TransferSubscriber):
    """When the first bytes moved: what came before is the actors' start-up."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.done: dict[str, float] = {}  # model -> when it finished

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        if self.at is None:
            self.at = time.monotonic()

    def on_model_done(self, result: ModelResult, **kwargs: Any) -> None:
        self.done[result.model_id] = time.monotonic()


def plans_for(source: SeaweedServer, bucket: str, models: int, root: str, nodes: int, target: str) -> list[ModelPlan]:
    """One plan per W1 model, model i on node i mod ``nodes``, read through that node's link."""
    client = source.client()
    plans = []
    for index in range(models):
        node = index % nodes
        prefix = f"{root}/model-{index:02d}/"
        plan = ModelPlan(f"m{index}", ObjectLocation("dst", target, prefix), node=f"node-{node}")
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                src = SourceObject(ObjectLocation(f"link-{node}", bucket, item["Key"]), item["Size"], item["ETag"])
                plan.add(CopyObject(src, ObjectLocation("dst", target, item["Key"])))
        plans.append(plan)
    return plans


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="drt-scaleout-"))
    rows: list[dict[str, Any]] = []
    workload = dataclasses.replace(FULL[0], scale=args.scale)
    with SeaweedServer(data_dir=work / "source") as source, SeaweedServer(data_dir=work / "target") as target:
        source.create_bucket("w1-source")
        payload = seed(workload, source.client(), "w1-source")
        links = [FaultProxy(source.ports["s3"]).start() for _ in range(NODES)]
        cluster = start_cluster(str(work / "r"))
        try:
            for link in links:
                link.bandwidth = args.cap
            credentials = source.endpoint().credentials
            endpoints = {f"link-{n}": dataclasses.replace(source.endpoint(f"link-{n}"), url=link.url)
                         for n, link in enumerate(links)}  # fmt: skip
            endpoints["dst"] = target.endpoint("dst")
            assert all(e.credentials == credentials for e in endpoints.values())
            settings = EngineSettings(processes=1, concurrency=args.concurrency)
            for repetition in range(args.repetitions):
                for nodes in args.nodes:
                    bucket = f"scaleout-{nodes}-{repetition}"
                    target.create_bucket(bucket)
                    plans = plans_for(source, "w1-source", workload.models, workload.root, nodes, bucket)
                    executor, scaled = ray_executor(ExecutorChoice("ray"), settings)
                    first = FirstByte()
                    started = time.monotonic()
                    results = run_transfer(plans, endpoints, scaled, [first], executor)
                    ended = time.monotonic()
                    seconds = ended - started
                    moving = ended - (first.at or started)
                    assert all(r.status == "ok" for r in results), [r.error for r in results]
                    moved = sum(r.bytes for r in results)
                    assert moved == payload.bytes, (moved, payload.bytes)
                    rows.append({"nodes": nodes, "repetition": repetition, "seconds": round(seconds, 2),
                                 "moving_seconds": round(moving, 2), "bytes": moved,
                                 "mib_s": round(moved / MiB / seconds, 1),
                                 "moving_mib_s": round(moved / MiB / moving, 1),
                                 "model_done_s": {m: round(t - ended + moving, 1) for m, t in first.done.items()},
                                 "model_bytes": {r.model_id: r.bytes for r in results}})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
            for link in links:
                link.stop()
            shutil.rmtree(work, ignore_errors=True)
    return rows


def plot(rows: list[dict[str, Any]], cap_mib: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = sorted({row["nodes"] for row in rows})
    fig, axis = plt.subplots(figsize=(5.5, 3.8))
    for key, label in (("moving_mib_s", "first byte to end"), ("mib_s", "whole run, actors' start-up included")):
        median = [statistics.median(r[key] for r in rows if r["nodes"] == n) for n in nodes]
        axis.plot(nodes, median, "o-", label=f"--executor ray, {label} (median)")
        if key == "moving_mib_s":
            axis.plot(nodes, [median[0] * n for n in nodes], "--", color="grey", label="linear from 1 node")
    axis.set_xticks(nodes)
    axis.set_xlabel("Ray nodes (each with its own capped link)")
    axis.set_ylabel("MiB/s")
    axis.set_title(f"W1 scale-out, {cap_mib:.0f} MiB/s per connection per node")
    axis.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.125, help="W1's model size factor (1.0 = 545 MiB)")
    parser.add_argument("--cap", type=int, default=2 * MiB, help="bytes/s per connection on each node's link")
    parser.add_argument("--concurrency", type=int, default=1, help="threads per actor (one actor per node)")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--nodes", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2, 3])
    args = parser.parse_args()
    rows = measure(args)
    (BENCH / "scaleout.json").write_text(json.dumps({"cap": args.cap, "scale": args.scale, "rows": rows}, indent=1))
    plot(rows, args.cap / MiB, BENCH / "scaleout.png")


if __name__ == "__main__":
    main()
