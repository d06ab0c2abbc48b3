"""The four workloads of issue 8, generated into the source SeaweedFS with realistic DRfC layouts.

Every model is a DRfC training prefix ``<root>/model-NN/`` written by :func:`drtransfer.samples.seed_model`
with one checkpoint (domain §1.2 sizes), minus the files an upload never moves, so tools that copy a
whole prefix move exactly what ``drtransfer upload`` and DRfC's flow move.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from boto3.s3.transfer import TransferConfig

from drtransfer.samples import NETWORK_SIZES, checkpoint_name, seed_model
from drtransfer_cli.benchmarking import NOT_UPLOADED

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    same_endpoint: bool
    root: str  # source prefix holding model-NN/ (W2 reuses W1's data)
    models: int
    network: str = "shallow"
    scale: float = 1.0
    big_object: int = 0  # replaces the checkpoint's .data file (W3)
    small_objects: int = 0  # extra 16 KiB objects under each model's metrics/ (W4)
    small_size: int = 16 * KiB
    unit: str = "MiB/s"  # the figure the plot and ratios lead with

    def model_prefix(self, index: int) -> str:
        return f"{self.root}/model-{index:02d}"


FULL = (
    Workload("W1", "8 shallow models (one checkpoint each, metadata, metrics), cross-endpoint", False, "w1", 8),
    Workload("W2", "W1's models, same endpoint (server-side copy possible)", True, "w1", 8),
    Workload("W3", "1 model with a 1 GiB checkpoint (a large custom network), cross-endpoint", False, "w3", 1,
             big_object=1 * GiB),
    Workload("W4", "2,000 objects of 16 KiB in 8 models' metrics prefixes, cross-endpoint", False, "w4", 8,
             network="deep", scale=16 * KiB / NETWORK_SIZES["deep"][0], small_objects=250, unit="objects/s"),
)

# Tiny versions, only to check that the harness works (never reported as results).
QUICK = (
    Workload("W1", FULL[0].title + " [quick: 2 tiny models]", False, "w1", 2, scale=0.02),
    Workload("W2", FULL[1].title + " [quick]", True, "w1", 2, scale=0.02),
    Workload("W3", FULL[2].title + " [quick: 48 MiB]", False, "w3", 1, scale=0.02, big_object=48 * MiB),
    Workload("W4", FULL[3].title + " [quick: 100 objects]", False, "w4", 2, network="deep",
             scale=FULL[3].scale, small_objects=50, unit="objects/s"),
)


@dataclass
class Payload:
    """What one run of a workload must move: relative key (under the root) -> size."""

    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(self.sizes.values())

    @property
    def objects(self) -> int:
        return len(self.sizes)


class GeneratedStream:
    """``size`` incompressible-looking bytes produced on the fly (no whole-object buffer)."""

    def __init__(self, size: int, seed: int) -> None:
        self.left = size
        rng = random.Random(seed)
        self.block = rng.randbytes(MiB)
        self.counter = 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        out = bytearray()
        while len(out) < n:
            self.counter += 1
            chunk = self.counter.to_bytes(8, "big") + self.block[8:]
            out += chunk[: n - len(out)]
        self.left -= n
        return bytes(out)


def _evaluation_name(index: int) -> str:
    day, second = divmod(index, 86400)
    hours, rest = divmod(second, 3600)
    return f"evaluation-202401{1 + day:02d}{hours:02d}{rest // 60:02d}{rest % 60:02d}.json"


def seed(workload: Workload, client: Any, bucket: str) -> Payload:
    """Write every model of ``workload`` under its root; returns what a run must move."""
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)

    def one(index: int) -> None:
        prefix = workload.model_prefix(index)
        seed_model(client, bucket, prefix, checkpoints=(1,), network=workload.network, scale=workload.scale,
                   seed=index)
        client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": f"{prefix}/{r}"} for r in NOT_UPLOADED], "Quiet": True}
        )
        if workload.big_object:
            key = f"{prefix}/model/{checkpoint_name(1)}.data-00000-of-00001"
            client.upload_fileobj(GeneratedStream(workload.big_object, index), bucket, key, Config=config)
        rng = random.Random(index)
        for n in range(workload.small_objects):
            key = f"{prefix}/metrics/evaluation/{_evaluation_name(n)}"
            client.put_object(Bucket=bucket, Key=key, Body=rng.randbytes(workload.small_size))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(workload.models)))
    return listing(client, bucket, workload.root)


def listing(client: Any, bucket: str, root: str) -> Payload:
    payload = Payload()
    prefix = root.rstrip("/") + "/"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            payload.sizes[item["Key"][len(prefix):]] = int(item["Size"])
    return payload


# Files the upload rewrites (their size at the target differs from the source's).
REWRITTEN = ("training_params.yaml", "model/deepracer_checkpoints.json", "model/.coach_checkpoint")


def verify(payload: Payload, client: Any, bucket: str, root: str) -> str | None:
    """``None`` when every payload object is at ``root`` with its size, else what is wrong."""
    found = listing(client, bucket, root)
    missing = [key for key in payload.sizes if key not in found.sizes]
    if missing:
        return f"{len(missing)} of {payload.objects} objects missing at the target, e.g. {missing[0]}"
    wrong = [k for k, size in payload.sizes.items() if not k.endswith(REWRITTEN) and found.sizes[k] != size]
    if wrong:
        return f"{len(wrong)} objects have the wrong size at the target, e.g. {wrong[0]}"
    return None
