"""``drtransfer models`` on 200 seeded prefixes: every model with its checkpoints, best and last with
their metrics, size and last change, whether (and up to which checkpoint) it is backed up and uploaded,
in a bounded number of requests to the local store (parallel listings, no request per object)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import checkpoint_name, seed_model
from tests.infra.drfc import json_lines, seed_drfc
from tests.infra.faultproxy import FaultProxy
from tests.models.conftest import RUNS, backup

PREFIXES = 200


def test_models_on_200_prefixes_is_correct_with_bounded_requests(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    with FaultProxy(local_s3.ports["s3"]) as proxy:
        drfc = seed_drfc(
            tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, RUNS, checkpoints=(1, 2, 3), best=2,
            scale=0.001, local_url=proxy.url, environ={"DRTRANSFER_STATE_DIR": str(tmp_path / "state")},
        )  # fmt: skip
        client = local_s3.client()
        extra = [f"model-{i:03d}" for i in range(PREFIXES - len(RUNS))]

        def seed(prefix: str) -> Any:
            return seed_model(client, local_bucket, prefix, checkpoints=(1, 2), best=1, scale=0.001)

        with ThreadPoolExecutor(8) as pool:
            seeded = dict(zip(extra, pool.map(seed, extra), strict=True))
        client.put_object(Bucket=local_bucket, Key="custom_files/reward_function.py", Body=b"def reward(p): return 1.0")
        backup(drfc, "0")
        assert drfc.run("upload", *drfc.upload_args("1"), "-f", "--processes", "0").returncode == 0

        # Count every request the command makes to the local store: the proxy counts requests when a
        # slow-down is configured, and one every 10**9 requests never happens here.
        proxy.slowdown_every = 10**9
        proxy.requests = 0
        started = time.monotonic()
        done = drfc.run("models", *drfc.upload_args(), "--json")
        seconds = time.monotonic() - started
        requests = proxy.requests
        table = drfc.run("models", *drfc.upload_args())
    assert done.returncode == 0, done.stderr
    entries = json_lines(done.stdout)
    local = {e["prefix"]: e for e in entries if e["location"] == "local"}
    assert len(local) == PREFIXES
    # one delimited listing, one listing per top-level prefix (201 with custom_files/) and one index read per model
    assert requests <= 1 + (PREFIXES + 1) + PREFIXES, requests
    print(f"models: {len(entries)} models, {requests} requests to the local store, {seconds:.2f} s")

    for prefix, model in seeded.items():
        entry = local[prefix]
        assert entry["checkpoints"] == 2 and entry["checkpoint_numbers"] == [1, 2]
        assert entry["best"] == {"number": 1, "name": checkpoint_name(1), "metric": 80.0, "time_stamp": 100.0}
        assert entry["last"]["number"] == 2 and entry["last"]["metric"] == 40.0
        assert entry["size"] == model.total_bytes and entry["objects"] == len(model.sizes)
        assert entry["last_change"] is not None
        assert entry["backed_up"] is None and entry["uploaded"] is None
    alpha, beta = local["alpha"], local["beta"]
    assert alpha["runs"] == ["run 0 (alpha)"] and alpha["checkpoints"] == 3
    assert alpha["backed_up"]["checkpoint"] == 3
    assert alpha["backed_up"]["url"] == f"s3://{upload_bucket}/backups/alpha/"
    assert alpha["uploaded"] is None
    assert beta["backed_up"] is None and beta["uploaded"] == f"s3://{upload_bucket}/beta-up/"
    [backed] = [e for e in entries if e["location"] == "backup"]
    assert backed["prefix"] == "backups/alpha" and backed["checkpoints"] == 3
    [uploaded] = [e for e in entries if e["location"] == "upload"]
    assert uploaded["prefix"] == "beta-up" and uploaded["checkpoint_numbers"] == [3]

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["WHERE", "MODEL"]
    assert len(lines) == 1 + PREFIXES + 2
    [alpha_row] = [line for line in lines if f"/{local_bucket}/alpha/" in line]
    assert "up to 3" in alpha_row and "2 (80.0)" in alpha_row and "3 (40.0)" in alpha_row
