"""Every copy strategy, every object shape, resume by skipping, dry run and commit order."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import pytest

from drtransfer.engine import MiB, run_transfer, strategy
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import DeleteObject, ObjectLocation, Operation, PutBytes
from tests.conftest import list_multipart_uploads as list_uploads
from tests.conftest import list_tree
from tests.engine.engine_helpers import (
    PART,
    Recorder,
    assert_copied,
    base_settings,
    copy_plan,
    put_multipart,
    put_single,
    random_bytes,
    statuses,
    strategies,
)


def make_sources(server: SeaweedServer, bucket: str) -> dict[str, bytes]:
    """Objects of every shape: empty, 1 byte, exactly one part, multipart (md5-N) below and above the
    multipart threshold, a one-part multipart, a large single PUT (plain MD5) and one with a CRC32."""
    client = server.client()
    data = {
        "m/empty": b"",
        "m/one-byte": b"x",
        "m/one-part": random_bytes(PART),
        "m/mp-small": random_bytes(7 * MiB),
        "m/mp-many": random_bytes(13 * MiB + 5),
        "m/mp-single-part": random_bytes(9 * MiB),
        "m/single-big": random_bytes(11 * MiB + 3),
        "m/crc-big": random_bytes(10 * MiB + 1),
    }
    for key in ("m/empty", "m/one-byte", "m/one-part", "m/single-big"):
        put_single(client, bucket, key, data[key])
    put_single(client, bucket, "m/crc-big", data["m/crc-big"], ChecksumAlgorithm="CRC32")
    crc = client.head_object(Bucket=bucket, Key="m/crc-big", ChecksumMode="ENABLED").get("ChecksumCRC32")
    assert crc is not None, "SeaweedFS stores the CRC32 sent with a PUT"
    assert int.from_bytes(__import__("base64").b64decode(crc), "big") == zlib.crc32(data["m/crc-big"])
    put_multipart(client, bucket, "m/mp-small", data["m/mp-small"])
    put_multipart(client, bucket, "m/mp-many", data["m/mp-many"])
    put_multipart(client, bucket, "m/mp-single-part", data["m/mp-single-part"], part=9 * MiB)
    return data


def endpoints(local_s3: SeaweedServer, upload_s3: SeaweedServer) -> dict[str, Any]:
    return {
        "local": local_s3.endpoint("local"),
        "local-copy": local_s3.endpoint("local-copy"),  # same server and identity: server-side copies
        "upload": upload_s3.endpoint("upload"),
    }


def test_cross_endpoint_every_shape_then_resume(
    local_s3: SeaweedServer,
    upload_s3: SeaweedServer,
    local_bucket: str,
    upload_bucket: str,
    workers: tuple[int, str | None],
    recorder: Recorder,
) -> None:
    data = make_sources(local_s3, local_bucket)
    index = PutBytes(ObjectLocation("upload", upload_bucket, "t/index.json"), b'{"done": true}', commit=True)
    generated = PutBytes(ObjectLocation("upload", upload_bucket, "t/generated.yaml"), b"a: 1\n")
    plan = copy_plan("cross", local_s3, "local", local_bucket, sorted(data), "upload", upload_bucket, "t/",
                     extra=[index, generated])  # fmt: skip
    settings = base_settings(*workers)

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), settings, [recorder])

    assert result.status == "ok", result.error
    assert_copied(upload_s3, upload_bucket, "t/", data)
    assert list_tree(upload_s3, upload_bucket, "t/index.json") == {"t/index.json": b'{"done": true}'}
    used = strategies(result)
    assert used["t/m/one-part"] == "stream"
    assert used["t/m/mp-small"] == "stream"
    assert used["t/m/mp-many"] == "stream-multipart"
    assert used["t/m/mp-single-part"] == "stream-multipart"
    assert used["t/m/crc-big"] == "stream-multipart"
    assert used["t/m/single-big"] == "stream-sequential"
    # a multipart source keeps its part layout, so the target ETag equals the source ETag
    head = upload_s3.client().head_object(Bucket=upload_bucket, Key="t/m/mp-many")
    assert head["ETag"] == local_s3.client().head_object(Bucket=local_bucket, Key="m/mp-many")["ETag"]
    assert head["ContentType"] == "application/x-test"
    # the commit operation ran last
    assert recorder.operations[-1][1].operation is index
    assert recorder.progress["cross"] == sum(len(v) for v in data.values()) + len(generated.body) + len(index.body)
    assert result.bytes == recorder.progress["cross"]
    assert list_uploads(upload_s3, upload_bucket) == []

    # Resume: everything is already there and verified, so everything is skipped.
    [again] = run_transfer([plan], endpoints(local_s3, upload_s3), settings)
    assert again.status == "ok"
    assert set(statuses(again).values()) == {"skipped"}
    assert again.skipped == len(plan.operations) and again.bytes == 0


def test_same_endpoint_server_side_copies(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, workers: tuple[int, str | None]
) -> None:
    data = make_sources(local_s3, local_bucket)
    target_bucket = local_bucket + "-copy"
    local_s3.create_bucket(target_bucket)
    plan = copy_plan("same", local_s3, "local", local_bucket, sorted(data), "local-copy", target_bucket, "t/")
    settings = base_settings(*workers, copy_threshold=6 * MiB)

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), settings)

    assert result.status == "ok", result.error
    assert_copied(local_s3, target_bucket, "t/", data)
    used = strategies(result)
    for key, body in data.items():
        expected = "copy-object" if len(body) <= 6 * MiB else "upload-part-copy"
        assert used["t/" + key] == expected, key
    assert list_uploads(local_s3, target_bucket) == []
    # nothing of the UploadPartCopy probe is left behind
    assert sorted(list_tree(local_s3, target_bucket)) == sorted("t/" + k for k in data)

    [again] = run_transfer([plan], endpoints(local_s3, upload_s3), settings)
    assert set(statuses(again).values()) == {"skipped"}


def test_dry_run_writes_nothing(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    workers: tuple[int, str | None],
) -> None:  # fmt: skip
    client = local_s3.client()
    small, big = random_bytes(1000), random_bytes(12 * MiB)
    put_single(client, local_bucket, "small", small)
    put_multipart(client, local_bucket, "big", big)
    upload_s3.client().put_object(Bucket=upload_bucket, Key="t/stale", Body=b"old")
    extra: list[Operation] = [
        PutBytes(ObjectLocation("upload", upload_bucket, "t/index"), b"i", commit=True),
        DeleteObject(ObjectLocation("upload", upload_bucket, "t/stale")),
    ]
    plan = copy_plan("dry", local_s3, "local", local_bucket, ["small", "big"], "upload", upload_bucket, "t/", extra)

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), base_settings(*workers, dry_run=True))

    assert result.status == "dry-run"
    assert set(statuses(result).values()) == {"dry-run"}
    assert strategies(result) == {
        "t/small": "stream", "t/big": "stream-multipart", "t/index": "put", "t/stale": "delete",
    }  # fmt: skip
    assert list_tree(upload_s3, upload_bucket) == {"t/stale": b"old"}
    assert list_uploads(upload_s3, upload_bucket) == []


def test_commit_operations_are_not_run_when_another_operation_fails(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    workers: tuple[int, str | None], recorder: Recorder,
) -> None:  # fmt: skip
    client = local_s3.client()
    put_single(client, local_bucket, "good", b"good bytes")
    put_single(client, local_bucket, "doomed", b"doomed bytes")
    good_index = PutBytes(ObjectLocation("upload", upload_bucket, "g/index"), b"1", commit=True)
    good = copy_plan("good", local_s3, "local", local_bucket, ["good"], "upload", upload_bucket, "g/", [good_index])
    bad = copy_plan("bad", local_s3, "local", local_bucket, ["good", "doomed"], "upload", upload_bucket, "b/",
                    extra=[PutBytes(ObjectLocation("upload", upload_bucket, "b/index"), b"1", commit=True),
                           DeleteObject(ObjectLocation("upload", upload_bucket, "elsewhere/x"))])  # fmt: skip
    client.delete_object(Bucket=local_bucket, Key="doomed")  # the source vanished after planning

    results = run_transfer([good, bad], endpoints(local_s3, upload_s3), base_settings(*workers), [recorder])

    assert [r.model_id for r in results] == ["good", "bad"]
    assert results[0].status == "ok"
    assert results[1].status == "failed"
    bad_status = statuses(results[1])
    assert bad_status == {"b/good": "copied", "b/doomed": "failed", "b/index": "not-run", "elsewhere/x": "failed"}
    assert "outside the model's target" in str(results[1].operations[-1].error)
    assert "doomed" in str(results[1].error)
    assert "Traceback" not in str(results[1].error) and "secret" not in str(results[1].error)
    tree = list_tree(upload_s3, upload_bucket)
    assert "g/index" in tree and "b/index" not in tree and "b/good" in tree
    # the good model's commit ran after its other operation
    good_ops = [r.operation.target.key for m, r in recorder.operations if m == "good"]
    assert good_ops == ["g/good", "g/index"]


def test_many_models_share_the_pool(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A large model does not hold back small ones: with one worker thread, parts of the large model
    and objects of the small models interleave (round-robin), and all finish correctly. (Objects the
    lean path copies with one GET are one task, like a small object: "big" is made to exceed them.)"""
    monkeypatch.setattr(strategy, "WHOLE_GET_PARTS", 2)
    client = local_s3.client()
    big = random_bytes(20 * MiB)
    put_multipart(client, local_bucket, "big", big)
    smalls = {f"s{i}": random_bytes(1000 + i) for i in range(3)}
    for key, body in smalls.items():
        put_single(client, local_bucket, key, body)
    plans = [copy_plan("big", local_s3, "local", local_bucket, ["big"], "upload", upload_bucket, "big/")]
    plans += [copy_plan(k, local_s3, "local", local_bucket, [k], "upload", upload_bucket, k + "/") for k in smalls]
    recorder = Recorder()

    results = run_transfer(plans, endpoints(local_s3, upload_s3), base_settings(0, concurrency=1), [recorder])

    assert [r.status for r in results] == ["ok"] * 4
    finished = [m.model_id for m in recorder.models]
    # the small models did not wait for the big one (which of them comes first depends on when reports arrive)
    assert min(finished.index(key) for key in smalls) < finished.index("big")
    assert hashlib.md5(list_tree(upload_s3, upload_bucket, "big/")["big/big"]).digest() == hashlib.md5(big).digest()


@pytest.mark.parametrize("start_method", ["spawn"])
def test_spawned_workers(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str, start_method: str
) -> None:
    client = local_s3.client()
    data = {"a": random_bytes(3), "b": random_bytes(12 * MiB)}
    put_single(client, local_bucket, "a", data["a"])
    put_multipart(client, local_bucket, "b", data["b"])
    plan = copy_plan("spawned", local_s3, "local", local_bucket, ["a", "b"], "upload", upload_bucket, "s/")

    [result] = run_transfer([plan], endpoints(local_s3, upload_s3), base_settings(2, start_method))

    assert result.status == "ok", result.error
    assert_copied(upload_s3, upload_bucket, "s/", data)
