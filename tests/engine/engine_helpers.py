"""Helpers for the engine tests: source objects with known bytes, plans, and checks of the target."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from drtransfer.engine import EngineSettings, MiB, TransferSubscriber
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import (
    CopyObject,
    ModelPlan,
    ModelResult,
    ObjectLocation,
    Operation,
    OperationResult,
    SourceObject,
)

PART = 5 * MiB  # SeaweedFS refuses non-last parts below 5 MiB
DATA_PATH = ["lean"]  # the data path base_settings uses: set by the `workers` fixture (tests/engine/conftest.py)


def base_settings(processes: int, start_method: str | None = None, **overrides: Any) -> EngineSettings:
    """Small parts and thresholds so a few MiB exercise every path; short retries for fault tests."""
    values: dict[str, Any] = {
        "processes": processes,
        "concurrency": 4,
        "part_size": PART,
        "multipart_threshold": 8 * MiB,
        "start_method": start_method,
        "retry_base_delay": 0.1,
        "retry_max_delay": 1.0,
        "data_path": DATA_PATH[0],
    }
    values.update(overrides)
    return EngineSettings(**values)


# Every engine test runs in-process and with real worker processes (forkserver; spawn where marked), on the
# lean data path (the default), and in-process on the botocore data path (DRTRANSFER_ENGINE=data_path=botocore).
WORKERS = [
    pytest.param((0, None, "lean"), id="inprocess"),
    pytest.param((2, "forkserver", "lean"), id="2proc"),
    pytest.param((0, None, "botocore"), id="inprocess-botocore"),
]


def put_single(client: Any, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=data, **extra)


def put_multipart(client: Any, bucket: str, key: str, data: bytes, part: int = PART, **extra: Any) -> str:
    """Upload ``data`` in parts of ``part`` bytes, so the object's ETag is ``md5-N`` (``extra``: more
    CreateMultipartUpload parameters)."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **{"ContentType": "application/x-test", **extra})
    parts = []
    for number, start in enumerate(range(0, len(data), part), start=1):
        answer = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data[start : start + part]
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    done = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    return str(done["ETag"]).strip('"')


def source_object(server: SeaweedServer, endpoint: str, bucket: str, key: str) -> SourceObject:
    head = server.client().head_object(Bucket=bucket, Key=key)
    return SourceObject(ObjectLocation(endpoint, bucket, key), int(head["ContentLength"]), head["ETag"].strip('"'))


def copy_plan(
    model_id: str,
    server: SeaweedServer,
    source_endpoint: str,
    source_bucket: str,
    keys: list[str],
    target_endpoint: str,
    target_bucket: str,
    prefix: str,
    extra: list[Operation] | None = None,
) -> ModelPlan:
    """Copy each source key to ``prefix + key`` on the target."""
    root = ObjectLocation(target_endpoint, target_bucket, prefix)
    plan = ModelPlan(model_id=model_id, target_root=root)
    for key in keys:
        source = source_object(server, source_endpoint, source_bucket, key)
        plan.add(CopyObject(source, ObjectLocation(target_endpoint, target_bucket, prefix + key)))
    for op in extra or []:
        plan.add(op)
    return plan


def target_bytes(server: SeaweedServer, bucket: str, key: str) -> bytes:
    body: bytes = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def assert_copied(server: SeaweedServer, bucket: str, prefix: str, expected: dict[str, bytes]) -> None:
    """Every expected object is at ``prefix + key`` with exactly these bytes."""
    for key, data in expected.items():
        got = target_bytes(server, bucket, prefix + key)
        assert len(got) == len(data), key
        assert hashlib.md5(got).hexdigest() == hashlib.md5(data).hexdigest(), key


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


@dataclass
class Recorder(TransferSubscriber):
    """Records every engine event (the parent-side subscriber interface)."""

    started: int = 0
    progress: dict[str, int] = field(default_factory=dict)
    retries: list[tuple[str, int, str]] = field(default_factory=list)
    operations: list[tuple[str, OperationResult]] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)

    def on_start(self, plans: Any, **kwargs: Any) -> None:
        self.started += 1

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        self.progress[model_id] = self.progress.get(model_id, 0) + delta

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str, **kwargs: Any) -> None:
        self.retries.append((model_id, attempt, error))

    def on_operation(self, model_id: str, result: OperationResult, **kwargs: Any) -> None:
        self.operations.append((model_id, result))

    def on_model_done(self, result: ModelResult, **kwargs: Any) -> None:
        self.models.append(result)


def statuses(result: ModelResult) -> dict[str, str]:
    """target key -> status"""
    return {r.operation.target.key: r.status for r in result.operations}


def strategies(result: ModelResult) -> dict[str, str]:
    return {r.operation.target.key: r.strategy for r in result.operations}


def count_calls(monkeypatch: Any, module: Any, names: tuple[str, ...]) -> list[str]:
    """Wrap each of ``module``'s functions ``names`` so that every call appends its name to the list returned."""
    used: list[str] = []
    for name in names:
        original = getattr(module, name)

        def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            used.append(_name)
            return _original(*args)

        monkeypatch.setattr(module, name, counted)
    return used
