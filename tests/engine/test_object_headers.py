"""A copy keeps its object's headers: the content type, the user metadata and the standard headers
that S3 stores with an object (Cache-Control, Content-Disposition, Content-Encoding, Content-Language),
whatever the strategy and the data path, as a server-side CopyObject keeps them."""

from __future__ import annotations

from typing import Any

from drtransfer.engine import MiB, run_transfer
from drtransfer.engine.multipart import stored_headers
from drtransfer.locals3 import SeaweedServer
from tests.engine.engine_helpers import (
    assert_copied,
    base_settings,
    copy_plan,
    put_multipart,
    put_single,
    random_bytes,
    strategies,
)

HEADERS = {
    "ContentType": "application/x-tar",
    "CacheControl": "max-age=60, private",
    "ContentDisposition": 'attachment; filename="model.tar.gz"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "en-GB",
}


def seed(server: SeaweedServer, bucket: str) -> dict[str, bytes]:
    """A small object, a single-part one above the multipart threshold and an md5-N one, each with the
    headers and one user metadata entry."""
    client = server.client()
    data = {"small": random_bytes(70_000), "single-big": random_bytes(9 * MiB), "parts": random_bytes(11 * MiB)}
    put_single(client, bucket, "small", data["small"], Metadata={"kept": "yes"}, **HEADERS)
    put_single(client, bucket, "single-big", data["single-big"], Metadata={"kept": "yes"}, **HEADERS)
    put_multipart(client, bucket, "parts", data["parts"], Metadata={"kept": "yes"}, **HEADERS)
    return data


def assert_headers_kept(server: SeaweedServer, bucket: str, keys: list[str]) -> None:
    client = server.client()
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert {name: head.get(name) for name in HEADERS} == HEADERS, key
        assert head["Metadata"].get("kept") == "yes", (key, head["Metadata"])


def test_copies_across_endpoints_keep_the_headers(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str,
    workers: tuple[int, str | None],
) -> None:  # fmt: skip
    data = seed(local_s3, local_bucket)
    plan = copy_plan("h", local_s3, "local", local_bucket, sorted(data), "upload", upload_bucket, "t/")
    endpoints: dict[str, Any] = {"local": local_s3.endpoint("local"), "upload": upload_s3.endpoint("upload")}

    [result] = run_transfer([plan], endpoints, base_settings(*workers))

    assert result.status == "ok", result.error
    used = strategies(result)  # one PUT, and two multipart uploads (one GET feeding parts, or a GET per part)
    assert used["t/small"] == "stream" and used["t/parts"] == "stream-multipart", used
    assert used["t/single-big"] in ("stream-multipart", "stream-sequential"), used
    assert_headers_kept(upload_s3, upload_bucket, ["t/" + key for key in data])
    assert_copied(upload_s3, upload_bucket, "t/", data)  # the bytes as stored: nothing decoded the "gzip"


def test_server_side_copies_keep_the_headers(
    local_s3: SeaweedServer, local_bucket: str, workers: tuple[int, str | None]
) -> None:
    data = seed(local_s3, local_bucket)
    target = local_bucket + "-h"
    local_s3.create_bucket(target)
    plan = copy_plan("h", local_s3, "local", local_bucket, sorted(data), "local-copy", target, "t/")
    endpoints = {"local": local_s3.endpoint("local"), "local-copy": local_s3.endpoint("local-copy")}

    [result] = run_transfer([plan], endpoints, base_settings(*workers, copy_threshold=6 * MiB))

    assert result.status == "ok", result.error
    assert strategies(result) == {
        "t/small": "copy-object",
        "t/single-big": "upload-part-copy",
        "t/parts": "upload-part-copy",
    }
    assert_headers_kept(local_s3, target, ["t/" + key for key in data])
    assert_copied(local_s3, target, "t/", data)


def test_aws_chunked_is_how_a_body_was_sent_not_a_stored_header() -> None:
    # S3 does not store aws-chunked with an object; a server that echoed it must not make our plain
    # PUTs announce a chunked body
    assert stored_headers({"ContentEncoding": "aws-chunked"}) == {}
    assert stored_headers({"ContentEncoding": "gzip, aws-chunked", "CacheControl": ""}) == {"ContentEncoding": "gzip"}
    assert stored_headers({"ContentLanguage": "en", "ContentType": "text/plain"}) == {"ContentLanguage": "en"}
