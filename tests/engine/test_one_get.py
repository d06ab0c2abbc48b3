"""Issue 17: on the lean data path an ``md5-N`` source is read with one GET and no HEAD, its parts spliced
from that one response into successive UploadParts; faults mid-object retry it and leave no upload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtransfer.endpoints import Endpoint
from drtransfer.engine import MiB, cleanup, run_transfer
from drtransfer.engine import lean as lean_module
from drtransfer.engine.messages import PartSpec
from drtransfer.engine.strategy import Strategy, buffered_bytes, guess_layout, one_get
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import CopyObject, ObjectLocation, SourceObject
from tests.conftest import list_multipart_uploads, start_seaweed
from tests.engine import engine_helpers as helpers
from tests.infra.faultproxy import Fault, FaultProxy

LEAN = [pytest.param(0, id="inprocess"), pytest.param(2, id="2proc")]


@pytest.fixture
def counted_s3(tmp_path: Path) -> Iterator[SeaweedServer]:
    """A source server whose request counters the test reads (HEADs count as GETs there)."""
    server = start_seaweed(tmp_path / "counted", count_requests=True)
    try:
        yield server
    finally:
        server.stop(graceful=False)


def proxied(server: SeaweedServer, proxy: FaultProxy, name: str) -> Endpoint:
    endpoint = server.endpoint(name)
    return Endpoint(name=name, url=proxy.url, region=endpoint.region, credentials=endpoint.credentials)


def source_gets(server: SeaweedServer, bucket: str, before: dict[Any, int]) -> int:
    return server.request_counts().get((bucket, "GET"), 0) - before.get((bucket, "GET"), 0)


def test_a_multipart_source_is_read_with_one_get_and_no_head(
    counted_s3: SeaweedServer, upload_s3: SeaweedServer, upload_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    original = lean_module.copy_multipart
    monkeypatch.setattr(lean_module, "copy_multipart", lambda *args: used.append("one-get") or original(*args))
    left: list[Any] = []
    clean_up = cleanup.clean_up
    monkeypatch.setattr(cleanup, "clean_up", lambda *args: left.append(args[2]) or clean_up(*args))
    counted_s3.create_bucket("src")
    client = counted_s3.client()
    data = helpers.random_bytes(13 * MiB)  # 3 parts of 5 MiB: the engine's part size
    upload = client.create_multipart_upload(
        Bucket="src", Key="mp", ContentType="application/x-test", Metadata={"kept": "yes"}
    )
    parts = []
    for number, start in enumerate(range(0, len(data), helpers.PART), start=1):
        answer = client.upload_part(
            Bucket="src", Key="mp", UploadId=upload["UploadId"], PartNumber=number,
            Body=data[start : start + helpers.PART],
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(Bucket="src", Key="mp", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": parts})  # fmt: skip
    endpoints = {"src": counted_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}
    plan = helpers.copy_plan("m", counted_s3, "src", "src", ["mp"], "dst", upload_bucket, "t/")
    before = counted_s3.request_counts()

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"))

    assert result.status == "ok", result.error
    assert used == ["one-get"]
    assert source_gets(counted_s3, "src", before) == 1  # one GET for the 3 parts, no HEAD
    assert helpers.strategies(result) == {"t/mp": "stream-multipart"}
    helpers.assert_copied(upload_s3, upload_bucket, "t/", {"mp": data})
    got = upload_s3.client().head_object(Bucket=upload_bucket, Key="t/mp")
    want = client.head_object(Bucket="src", Key="mp")
    assert got["ETag"] == want["ETag"]  # copied in the source's own part layout
    assert got["ContentType"] == "application/x-test"  # from the GET's head
    assert got["Metadata"]["kept"] == "yes"
    assert got["Metadata"]["drtransfer-source-etag"] == want["ETag"].strip('"')
    assert list_multipart_uploads(upload_s3, upload_bucket) == []
    assert left == []  # the completed upload was not left for the end of the run to abort


def test_a_layout_guessed_wrong_is_learnt_and_copied_again(
    counted_s3: SeaweedServer, upload_s3: SeaweedServer, upload_bucket: str
) -> None:
    """Parts of 5 MiB + 1 byte: the guess (the engine's 5 MiB) gives part ETags that do not combine to the
    source's; one HEAD then tells the layout and the object is copied again in it, never completed wrong."""
    counted_s3.create_bucket("src")
    data = helpers.random_bytes(11 * MiB)
    helpers.put_multipart(counted_s3.client(), "src", "odd", data, part=5 * MiB + 1)
    endpoints = {"src": counted_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}
    plan = helpers.copy_plan("m", counted_s3, "src", "src", ["odd"], "dst", upload_bucket, "t/")
    before = counted_s3.request_counts()
    recorder = helpers.Recorder()

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"), [recorder])

    assert result.status == "ok", result.error
    assert source_gets(counted_s3, "src", before) == 3  # the guessed GET, one HEAD (part 1), the GET again
    helpers.assert_copied(upload_s3, upload_bucket, "t/", {"odd": data})
    src_etag = counted_s3.client().head_object(Bucket="src", Key="odd")["ETag"]
    assert upload_s3.client().head_object(Bucket=upload_bucket, Key="t/odd")["ETag"] == src_etag
    assert recorder.progress["m"] == len(data)  # the first pass's bytes were taken back
    assert recorder.retries == []  # not a failure: the same attempt
    assert list_multipart_uploads(upload_s3, upload_bucket) == []


@pytest.mark.parametrize("processes", LEAN)
def test_a_reset_mid_object_retries_it_with_exact_bytes_and_no_upload_left(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str, processes: int
) -> None:
    data = helpers.random_bytes(13 * MiB)
    helpers.put_multipart(local_s3.client(), local_bucket, "big", data)
    recorder = helpers.Recorder()
    with FaultProxy(local_s3.ports["s3"]) as proxy:
        # the one GET breaks in its second part, after part 1 was uploaded
        proxy.add(Fault("reset", "down", "GET", "/big", after_bytes=7 * MiB))
        endpoints = {"src": proxied(local_s3, proxy, "src"), "dst": upload_s3.endpoint("dst")}
        plan = helpers.copy_plan("m", local_s3, "src", local_bucket, ["big"], "dst", upload_bucket, "t/")
        settings = helpers.base_settings(processes, "forkserver" if processes else None, data_path="lean")

        [result] = run_transfer([plan], endpoints, settings, [recorder])

    assert proxy.fired, "the reset never fired"
    assert result.status == "ok", result.error
    assert helpers.strategies(result) == {"t/big": "stream-multipart"}
    [retry] = recorder.retries  # the engine retried the object once
    assert retry[1] == 2
    helpers.assert_copied(upload_s3, upload_bucket, "t/", {"big": data})
    assert recorder.progress["m"] == len(data)  # the broken attempt's bytes were rewound
    assert list_multipart_uploads(upload_s3, upload_bucket) == []  # the broken attempt's upload was aborted


def test_a_throttled_part_is_sent_again_from_a_ranged_get(
    counted_s3: SeaweedServer, upload_s3: SeaweedServer, upload_bucket: str
) -> None:
    """A part the target answers 503 SlowDown is sent again (as botocore would) from a GET that starts at
    that part; the parts before it are kept."""
    counted_s3.create_bucket("src")
    data = helpers.random_bytes(13 * MiB)
    helpers.put_multipart(counted_s3.client(), "src", "big", data)
    recorder = helpers.Recorder()
    with FaultProxy(upload_s3.ports["s3"]) as proxy:
        proxy.slowdown_every, proxy.slowdown_methods = 2, {"PUT"}  # the 2nd PUT: part 2
        endpoints = {"src": counted_s3.endpoint("src"), "dst": proxied(upload_s3, proxy, "dst")}
        plan = helpers.copy_plan("m", counted_s3, "src", "src", ["big"], "dst", upload_bucket, "t/")
        before = counted_s3.request_counts()

        [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"), [recorder])
        proxy.slowdown_every = 0

    assert result.status == "ok", result.error
    assert proxy.slowdowns == 2  # parts 2 and 4: part 2, then its resend (3rd), part 3 (4th)
    assert source_gets(counted_s3, "src", before) == 3  # the GET, then one ranged GET per resend
    errors = [error for _, _, error in recorder.retries]
    resent = "upload part {} of s3://" + upload_bucket + "/t/big: the S3 client sent it again after SlowDown."
    assert errors == [resent.format(2), resent.format(3)]  # each part is sent again as its own request
    helpers.assert_copied(upload_s3, upload_bucket, "t/", {"big": data})
    assert recorder.progress["m"] == len(data)
    assert list_multipart_uploads(upload_s3, upload_bucket) == []


def test_the_layout_guess_and_what_the_task_buffers() -> None:
    settings = helpers.base_settings(0, data_path="lean", part_size=8 * MiB, multipart_threshold=16 * MiB)
    assert guess_layout(45 * MiB, 6, 8 * MiB) == tuple(
        PartSpec(n + 1, n * 8 * MiB, min((n + 1) * 8 * MiB, 45 * MiB)) for n in range(6)
    )
    assert guess_layout(12 * MiB, 2, 5 * MiB) == (PartSpec(1, 0, 6 * MiB), PartSpec(2, 6 * MiB, 12 * MiB))
    assert guess_layout(300 * MiB, 2, 8 * MiB) is None  # parts above 128 MiB: not guessed

    def op(size: int, etag: str) -> CopyObject:
        return CopyObject(SourceObject(ObjectLocation("src", "b", "k"), size, etag), ObjectLocation("dst", "t", "k"))

    w1, w3 = op(45 * MiB, "0" * 32 + "-6"), op(1024 * MiB, "0" * 32 + "-128")
    assert one_get(w1, settings) and not one_get(w3, settings)
    # one GET splices its parts: it holds no part buffer, so many objects can be in flight at once
    assert buffered_bytes(Strategy.STREAM_MULTIPART, w1, settings) == 0
    assert buffered_bytes(Strategy.STREAM_MULTIPART, w3, settings) > 0
    botocore = helpers.base_settings(0, data_path="botocore", part_size=8 * MiB, multipart_threshold=16 * MiB)
    assert buffered_bytes(Strategy.STREAM_MULTIPART, w1, botocore) > 0


def test_a_source_changed_since_the_listing_is_looked_at_again(
    local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str
) -> None:
    """The GET shows another ETag than the plan's: no upload is created from it; the object is looked at
    again with a HEAD, as before this path existed, and its new bytes are copied and verified."""
    client = local_s3.client()
    helpers.put_multipart(client, local_bucket, "big", helpers.random_bytes(13 * MiB))
    plan = helpers.copy_plan("m", local_s3, "src", local_bucket, ["big"], "dst", upload_bucket, "t/")
    new = helpers.random_bytes(13 * MiB)
    helpers.put_multipart(client, local_bucket, "big", new)  # after planning
    endpoints = {"src": local_s3.endpoint("src"), "dst": upload_s3.endpoint("dst")}

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"))

    assert result.status == "ok", result.error
    helpers.assert_copied(upload_s3, upload_bucket, "t/", {"big": new})
    assert list_multipart_uploads(upload_s3, upload_bucket) == []
