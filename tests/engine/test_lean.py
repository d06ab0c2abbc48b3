"""The lean data path: target-verified copies move over the engine's own connections, with botocore's SigV4
and addressing, and nothing else changes."""

from __future__ import annotations

from typing import Any

import pytest

from drtransfer.endpoints import Endpoint
from drtransfer.engine import MiB, run_transfer
from drtransfer.engine import lean as lean_module
from drtransfer.locals3 import SeaweedServer
from tests.conftest import list_multipart_uploads
from tests.engine import engine_helpers as helpers


def test_lean_copies_small_objects_and_parts_with_the_source_etags(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    used = helpers.count_calls(monkeypatch, lean_module, ("copy_small", "copy_part", "copy_multipart"))
    client = local_s3.client()
    # keys that need percent-encoding in the path and in the signature
    data = {"a b+c=d/é~x.json": helpers.random_bytes(70_000), "empty": b"", "mp": helpers.random_bytes(12 * MiB)}
    helpers.put_single(client, local_bucket, "a b+c=d/é~x.json", data["a b+c=d/é~x.json"], Metadata={"kept": "yes"})
    helpers.put_single(client, local_bucket, "empty", b"")
    helpers.put_multipart(client, local_bucket, "mp", data["mp"])
    endpoints = {"src": local_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}
    plan = helpers.copy_plan("m", local_s3, "src", local_bucket, sorted(data), "dst", upload_bucket, "t/")

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"))

    assert result.status == "ok", result.error
    assert sorted(used) == ["copy_multipart"] + ["copy_small"] * 2  # the 3 parts of "mp": one GET
    assert helpers.strategies(result) == {
        "t/a b+c=d/é~x.json": "stream",
        "t/empty": "stream",
        "t/mp": "stream-multipart",
    }
    helpers.assert_copied(upload_s3, upload_bucket, "t/", data)
    target, source = upload_s3.client(), local_s3.client()
    for key in data:
        got, want = (
            target.head_object(Bucket=upload_bucket, Key="t/" + key),
            source.head_object(Bucket=local_bucket, Key=key),
        )
        assert got["ETag"] == want["ETag"]  # the md5-N object kept its part layout
    head = target.head_object(Bucket=upload_bucket, Key="t/a b+c=d/é~x.json")
    assert head["Metadata"]["kept"] == "yes"
    assert head["Metadata"]["drtransfer-source-etag"] == want_etag(source, local_bucket, "a b+c=d/é~x.json")
    assert list_multipart_uploads(upload_s3, upload_bucket) == []


def want_etag(client: Any, bucket: str, key: str) -> str:
    return str(client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')


def test_addressing_follows_the_endpoint() -> None:
    custom = Endpoint("u", "http://127.0.0.1:9000/base/", "eu-west-1", None)
    aws = Endpoint("a", None, "eu-west-1", None)
    on_custom = lean_module.address(custom, "bucket", "a b/c")
    assert on_custom.url == "http://127.0.0.1:9000/base/bucket/a%20b/c"
    assert (on_custom.host, on_custom.port, on_custom.netloc) == ("127.0.0.1", 9000, "127.0.0.1:9000")
    assert lean_module.address(aws, "bucket", "k").url == "https://bucket.s3.eu-west-1.amazonaws.com/k"
    # a dotted bucket name would not match the certificate of a virtual host: path style
    assert lean_module.address(aws, "my.bucket", "k").url == "https://s3.eu-west-1.amazonaws.com/my.bucket/k"


def test_an_endpoint_without_credentials_uses_botocore(local_s3: SeaweedServer) -> None:
    from drtransfer.engine.runtime import Runtime

    rt = Runtime(
        {"anon": Endpoint("anon", local_s3.url, "us-east-1", None)}, helpers.base_settings(0), lambda r: None, _Never()
    )
    path = rt.lean()
    assert path is not None and not path.usable("anon")
    assert Runtime({}, helpers.base_settings(0, data_path="botocore"), lambda r: None, _Never()).lean() is None


class _Never:
    def is_set(self) -> bool:
        return False


def test_the_data_path_is_chosen_with_drtransfer_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from drtransfer_cli.app import engine_settings

    assert engine_settings(0, None, None).data_path == "lean"
    monkeypatch.setenv("DRTRANSFER_ENGINE", "data_path=botocore")
    assert engine_settings(0, None, None).data_path == "botocore"
