"""Credentials on a node: an actor resolves each endpoint's profile from the node's own AWS files and
environment; only the endpoints it cannot resolve need the command's credentials, and a task then moves
bytes with them (the actor's body, used here without Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtransfer.endpoints import Endpoint
from drtransfer.engine import EngineSettings
from drtransfer.engine.messages import AuditDone, AuditTask
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ObjectLocation
from drtransfer_plugins.ray_executor.node import NodeWorker, public


def test_the_node_resolves_profiles_and_asks_only_for_the_rest(
    tmp_path: Path, local_s3: SeaweedServer, local_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[node-minio]\naws_access_key_id = {local_s3.access_key}\naws_secret_access_key = {local_s3.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    endpoint = local_s3.endpoint("src")
    endpoints = {
        "profiled": Endpoint("profiled", endpoint.url, endpoint.region, endpoint.credentials, profile="node-minio"),
        "keys": endpoint,  # explicit keys, no profile: only the command has them
    }
    sent = public(endpoints)
    assert all(e.credentials is None for e in sent.values())  # what travels in the actor's arguments

    worker = NodeWorker(sent, EngineSettings(processes=1, concurrency=1), "node-a")
    assert worker.where()[1] == ["keys"]
    assert repr(worker) == "NodeWorker(node-a)"
    worker.provide({"keys": endpoint.credentials})  # type: ignore[dict-item]

    local_s3.client().put_object(Bucket=local_bucket, Key="m/x", Body=b"x")
    for task_id, name in enumerate(endpoints, start=1):
        worker.run(AuditTask(task_id, 0, ObjectLocation(name, local_bucket, "m/"), frozenset({"x"})))
    reports = worker.drain(5)
    assert [type(r) for r in reports] == [AuditDone, AuditDone], reports  # both endpoints authenticated
