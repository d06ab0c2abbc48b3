"""choose_strategy and the bytes each strategy buffers: pure, no server."""

from __future__ import annotations

import pytest

from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine import EngineSettings, GiB, MiB
from drtransfer.engine.strategy import SEQUENTIAL_PARTS_IN_FLIGHT, Strategy, buffered_bytes, choose_strategy
from drtransfer.operations import CopyObject, DeleteObject, ObjectLocation, PutBytes, SourceObject

KEYS = Credentials("test-key", "test-secret")
ENDPOINTS = {
    "local": Endpoint("local", "http://127.0.0.1:9000", "us-east-1", KEYS),
    # the same server and identity under another name: server-side copies are possible
    "local-copy": Endpoint("local-copy", "http://127.0.0.1:9000", "us-east-1", KEYS),
    "other-keys": Endpoint("other-keys", "http://127.0.0.1:9000", "us-east-1", Credentials("other-key", "other")),
    "other-region": Endpoint("other-region", "http://127.0.0.1:9000", "eu-west-1", KEYS),
    "upload": Endpoint("upload", "http://127.0.0.1:9001", "us-east-1", KEYS),
}
SETTINGS = EngineSettings(processes=0, part_size=8 * MiB, multipart_threshold=16 * MiB, copy_threshold=64 * MiB)


def copy(size: int, target: str = "upload", source: str = "local") -> CopyObject:
    return CopyObject(
        SourceObject(ObjectLocation(source, "src", "model/a"), size, "d41d8cd98f00b204e9800998ecf8427e"),
        ObjectLocation(target, "dst", "model/a"),
    )


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, Strategy.STREAM),
        (16 * MiB, Strategy.STREAM),  # the threshold itself: one GET and one PUT
        (16 * MiB + 1, Strategy.STREAM_MULTIPART),
        (6 * GiB, Strategy.STREAM_MULTIPART),
    ],
)
def test_between_stores_a_copy_is_streamed_single_up_to_the_multipart_threshold(size: int, expected: Strategy) -> None:
    assert choose_strategy(copy(size), ENDPOINTS, SETTINGS) is expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, Strategy.COPY_OBJECT),
        (64 * MiB, Strategy.COPY_OBJECT),  # the copy threshold itself: one CopyObject
        (64 * MiB + 1, Strategy.UPLOAD_PART_COPY),
    ],
)
def test_within_a_store_a_copy_is_server_side_single_up_to_the_copy_threshold(size: int, expected: Strategy) -> None:
    assert choose_strategy(copy(size, target="local-copy"), ENDPOINTS, SETTINGS) is expected
    assert choose_strategy(copy(size, target="local"), ENDPOINTS, SETTINGS) is expected  # same endpoint


def test_copy_object_never_goes_above_5_gib_whatever_the_copy_threshold() -> None:
    settings = EngineSettings(processes=0, copy_threshold=10 * GiB)
    assert choose_strategy(copy(5 * GiB, target="local-copy"), ENDPOINTS, settings) is Strategy.COPY_OBJECT
    assert choose_strategy(copy(5 * GiB + 1, target="local-copy"), ENDPOINTS, settings) is Strategy.UPLOAD_PART_COPY


@pytest.mark.parametrize("target", ["other-keys", "other-region", "upload"])
def test_another_identity_region_or_url_is_another_store(target: str) -> None:
    assert choose_strategy(copy(MiB, target=target), ENDPOINTS, SETTINGS) is Strategy.STREAM
    assert choose_strategy(copy(100 * MiB, target=target), ENDPOINTS, SETTINGS) is Strategy.STREAM_MULTIPART


def test_a_failed_upload_part_copy_probe_streams_the_large_copies_only() -> None:
    large, small = copy(100 * MiB, target="local-copy"), copy(MiB, target="local-copy")
    assert choose_strategy(large, ENDPOINTS, SETTINGS, part_copy_works=True) is Strategy.UPLOAD_PART_COPY
    assert choose_strategy(large, ENDPOINTS, SETTINGS, part_copy_works=None) is Strategy.UPLOAD_PART_COPY
    assert choose_strategy(large, ENDPOINTS, SETTINGS, part_copy_works=False) is Strategy.STREAM_MULTIPART
    # streamed by size: a copy above a low copy threshold and below the multipart threshold is one GET and PUT
    low = EngineSettings(processes=0, copy_threshold=4 * MiB, multipart_threshold=16 * MiB)
    assert choose_strategy(copy(10 * MiB, "local-copy"), ENDPOINTS, low, part_copy_works=False) is Strategy.STREAM
    assert choose_strategy(small, ENDPOINTS, SETTINGS, part_copy_works=False) is Strategy.COPY_OBJECT


def test_an_attempt_that_must_stream_never_copies_server_side() -> None:
    for size, expected in ((MiB, Strategy.STREAM), (20 * MiB, Strategy.STREAM_MULTIPART)):
        assert choose_strategy(copy(size, "local-copy"), ENDPOINTS, SETTINGS, server_copy=False) is expected
        assert (
            choose_strategy(copy(size, "local-copy"), ENDPOINTS, SETTINGS, server_copy=False, part_copy_works=True)
            is expected
        )


def test_put_and_delete_do_not_depend_on_size_or_endpoints() -> None:
    target = ObjectLocation("upload", "dst", "model/index")
    assert choose_strategy(PutBytes(target, b"x" * (100 * MiB)), ENDPOINTS, SETTINGS) is Strategy.PUT
    assert choose_strategy(DeleteObject(target), ENDPOINTS, SETTINGS, server_copy=False) is Strategy.DELETE


def test_strategy_values_are_the_reported_names() -> None:
    assert [s.value for s in Strategy] == [
        "copy-object", "upload-part-copy", "stream", "stream-multipart", "put", "delete",
    ]  # fmt: skip


def test_buffered_bytes_per_strategy() -> None:
    target = ObjectLocation("upload", "dst", "model/index")
    assert buffered_bytes(Strategy.PUT, PutBytes(target, b"x" * 1000), SETTINGS) == 1000
    assert buffered_bytes(Strategy.STREAM, copy(3 * MiB), SETTINGS) == 3 * MiB
    assert buffered_bytes(Strategy.STREAM_MULTIPART, copy(GiB), SETTINGS) == (SEQUENTIAL_PARTS_IN_FLIGHT + 1) * 8 * MiB
    for server_side in (Strategy.COPY_OBJECT, Strategy.UPLOAD_PART_COPY):
        assert buffered_bytes(server_side, copy(GiB, "local-copy"), SETTINGS) == 0
    assert buffered_bytes(Strategy.DELETE, DeleteObject(target), SETTINGS) == 0
