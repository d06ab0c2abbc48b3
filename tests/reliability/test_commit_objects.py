"""The commit rule at engine level: a target never keeps commit objects without everything they
commit. A commit that fails half-way is rolled back; commit objects of an earlier, different upload are
removed before anything is written, so a failure afterwards cannot leave them pointing at replaced files."""

from __future__ import annotations

from drtransfer.endpoints import Endpoint
from drtransfer.engine import EngineSettings, run_transfer
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import CopyObject, ModelPlan, ObjectLocation, PutBytes, SourceObject
from tests.conftest import list_tree

SETTINGS = EngineSettings(processes=0, concurrency=2, retry_base_delay=0.05, retry_max_delay=0.1)


def plan_with(
    local_s3: SeaweedServer, local_bucket: str, upload_bucket: str, index: bytes, source_key: str
) -> ModelPlan:
    """Copy ``data`` into t/, then commit ``t/index`` (bytes) and ``t/meta`` (a copy of ``source_key``)."""
    head = local_s3.client().head_object(Bucket=local_bucket, Key="data")
    root = ObjectLocation("upload", upload_bucket, "t/")
    plan = ModelPlan("m", root)
    data = SourceObject(ObjectLocation("local", local_bucket, "data"), int(head["ContentLength"]), head["ETag"])
    plan.add(CopyObject(data, ObjectLocation("upload", upload_bucket, "t/data")))
    plan.add(PutBytes(ObjectLocation("upload", upload_bucket, "t/index"), index, commit=True))
    meta = SourceObject(ObjectLocation("local", local_bucket, source_key), 4, "0" * 32)
    plan.add(CopyObject(meta, ObjectLocation("upload", upload_bucket, "t/meta"), commit=True))
    return plan


def endpoints(local_s3: SeaweedServer, upload_s3: SeaweedServer) -> dict[str, Endpoint]:
    return {"local": local_s3.endpoint("local"), "upload": upload_s3.endpoint("upload")}


def test_a_commit_that_fails_half_way_is_rolled_back(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    local_s3.client().put_object(Bucket=local_bucket, Key="data", Body=b"model bytes")
    plan = plan_with(local_s3, local_bucket, upload_bucket, b"index v1", "gone")  # the second commit fails

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), SETTINGS)

    assert result.status == "failed"
    assert [r.status for r in result.operations] == ["copied", "put", "failed"]
    assert "s3://" in str(result.error) and str(result.error).endswith(".")
    assert list_tree(upload_s3, upload_bucket) == {"t/data": b"model bytes"}  # t/index was written, then removed


def test_commit_objects_of_an_earlier_upload_go_before_anything_is_written(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    client = local_s3.client()
    client.put_object(Bucket=local_bucket, Key="data", Body=b"new model bytes")
    client.put_object(Bucket=local_bucket, Key="meta", Body=b"meta")
    target = upload_s3.client()
    for key, body in (("t/data", b"old model bytes"), ("t/index", b"index v1"), ("t/meta", b"meta")):
        target.put_object(Bucket=upload_bucket, Key=key, Body=body)  # a complete earlier upload
    plan = plan_with(local_s3, local_bucket, upload_bucket, b"index v2", "meta")
    client.delete_object(Bucket=local_bucket, Key="data")  # the new model's copy will fail

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), SETTINGS)

    assert result.status == "failed"
    # the old index no longer claims a model whose files may be half replaced
    assert list_tree(upload_s3, upload_bucket) == {"t/data": b"old model bytes"}


def test_an_identical_earlier_upload_is_kept_and_skipped(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    client = local_s3.client()
    client.put_object(Bucket=local_bucket, Key="data", Body=b"model bytes")
    client.put_object(Bucket=local_bucket, Key="meta", Body=b"meta")
    plan = plan_with(local_s3, local_bucket, upload_bucket, b"index v1", "meta")
    meta_etag = client.head_object(Bucket=local_bucket, Key="meta")["ETag"].strip('"')
    commit = plan.operations[2]
    assert isinstance(commit, CopyObject)
    plan.operations[2] = CopyObject(SourceObject(commit.source.location, 4, meta_etag), commit.target, commit=True)

    [first] = run_transfer([plan], endpoints(local_s3, upload_s3), SETTINGS)
    [again] = run_transfer([plan], endpoints(local_s3, upload_s3), SETTINGS)

    assert first.status == again.status == "ok"
    assert [r.status for r in again.operations] == ["skipped", "skipped", "skipped"]
    assert list_tree(upload_s3, upload_bucket) == {"t/data": b"model bytes", "t/index": b"index v1", "t/meta": b"meta"}
