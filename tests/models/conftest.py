"""Three seeded DRfC runs on two real SeaweedFS servers (local MinIO stand-in, upload/backup target),
and the helpers the model-management tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import SeaweedServer
from tests.infra.drfc import DrfcSetup, json_lines, seed_drfc

RUNS = (("0", "alpha"), ("1", "beta"), ("2", "gamma"))
CHECKPOINTS = (1, 2, 3, 4)  # best 2, last 4
MANIFEST = "drtransfer-backup.json"


@pytest.fixture
def drfc(
    tmp_path: Path, local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> DrfcSetup:
    return seed_drfc(
        tmp_path / "drfc", local_s3, upload_s3, local_bucket, upload_bucket, RUNS, checkpoints=CHECKPOINTS, best=2,
        scale=0.01, environ={"DRTRANSFER_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip


def backup(drfc: DrfcSetup, *run_ids: str, extra: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``drtransfer backup`` of ``run_ids`` (-f --json); each run's JSON line by run id."""
    done = drfc.run("backup", *drfc.upload_args(*run_ids), "-f", "--json", "--processes", "0", *extra)
    assert done.returncode == 0, done.stderr
    return {line["run_id"]: line for line in json_lines(done.stdout)}


def objects(server: SeaweedServer, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Relative key -> size, ETag and bytes of every object under ``prefix/``."""
    client = server.client()
    out: dict[str, dict[str, Any]] = {}
    root = prefix.rstrip("/") + "/"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"][len(root) :]] = {"size": item["Size"], "etag": item["ETag"].strip('"'), "body": body}
    return out


def manifest(drfc: DrfcSetup, prefix: str) -> dict[str, Any]:
    client = drfc.upload.client()
    raw = client.get_object(Bucket=drfc.upload_bucket, Key=f"backups/{prefix}/{MANIFEST}")["Body"].read()
    data: dict[str, Any] = json.loads(raw)
    return data


def assert_manifest_matches(drfc: DrfcSetup, prefix: str) -> dict[str, Any]:
    """The backup holds exactly the manifest's objects, byte for byte those of the training prefix."""
    data = manifest(drfc, prefix)
    held = objects(drfc.upload, drfc.upload_bucket, f"backups/{prefix}")
    held.pop(MANIFEST)
    assert sorted(held) == sorted(data["objects"])
    source = objects(drfc.local, drfc.local_bucket, prefix)
    for key, entry in data["objects"].items():
        assert held[key]["size"] == entry["size"], key
        if key.startswith("custom_files/"):
            continue
        assert held[key]["body"] == source[key]["body"], key
        assert entry["etag"] == source[key]["etag"], key
    return data
