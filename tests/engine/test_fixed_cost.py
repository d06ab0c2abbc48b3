"""The fixed cost of a command: one S3 client per endpoint per process, one write check per target bucket."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, cast

import botocore.loaders
import botocore.utils
import dateutil.parser
import pytest

from drtransfer.endpoints import PREFLIGHT_SETTINGS, list_pages, make_s3_client, parse_timestamp
from drtransfer.locals3 import SeaweedServer
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import check_targets
from tests.conftest import list_multipart_uploads


def test_one_client_per_endpoint_and_settings_per_process(upload_s3: SeaweedServer) -> None:
    endpoint = upload_s3.endpoint("upload")
    client = make_s3_client(endpoint, PREFLIGHT_SETTINGS)
    assert make_s3_client(upload_s3.endpoint("upload"), PREFLIGHT_SETTINGS) is client
    assert make_s3_client(endpoint) is not client  # other timeouts and retries: another client
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked worker must not share the parent's pooled connections
        os.close(read)
        os.write(write, b"1" if make_s3_client(endpoint, PREFLIGHT_SETTINGS) is not client else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"


class CountingClient:
    """A real client that counts the requests made through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method) or name == "meta":
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted


def test_the_write_check_is_made_once_per_target_bucket(upload_s3: SeaweedServer, upload_bucket: str) -> None:
    endpoint = upload_s3.endpoint("upload")
    counting = CountingClient(make_s3_client(endpoint, PREFLIGHT_SETTINGS))
    runs = [
        cast(RunConfig, SimpleNamespace(upload=endpoint, upload_bucket=upload_bucket, upload_prefix=f"m{n}", label=n))
        for n in range(4)
    ]

    check_targets(runs, lambda _: counting)

    # one write check (start and abort an upload) for the bucket and a listing per prefix; no HeadBucket:
    # the listings show the bucket is there
    assert sorted(counting.calls) == sorted(
        ["create_multipart_upload", "abort_multipart_upload"] + ["list_objects_v2"] * 4
    )
    assert list_multipart_uploads(upload_s3, upload_bucket) == []


def test_threads_asking_at_once_share_one_client(upload_s3: SeaweedServer) -> None:
    endpoint = upload_s3.endpoint("threads")
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: make_s3_client(endpoint, PREFLIGHT_SETTINGS), range(8)))
    assert all(client is clients[0] for client in clients)


def test_listings_follow_continuation_tokens_without_scanning_botocores_data(
    upload_s3: SeaweedServer, upload_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listings page by continuation token themselves: botocore's paginator scans every service directory
    of its data on first use, once per thread that asks at the same time (8 inspections: 8 scans)."""
    client = make_s3_client(upload_s3.endpoint("pages"))
    for n in range(5):
        client.put_object(Bucket=upload_bucket, Key=f"pages/{n}", Body=b"x")
    client.put_object(Bucket=upload_bucket, Key="pagesx", Body=b"not under the prefix")
    scans: list[str] = []
    real = botocore.loaders.Loader.list_available_services
    monkeypatch.setattr(
        botocore.loaders.Loader, "list_available_services", lambda self, kind: scans.append(kind) or real(self, kind)
    )

    def keys(_: int) -> list[list[str]]:
        pages = list_pages(client.list_objects_v2, Bucket=upload_bucket, Prefix="pages/", MaxKeys=2)
        return [[item["Key"] for item in page.get("Contents", [])] for page in pages]

    with ThreadPoolExecutor(4) as pool:
        listed = list(pool.map(keys, range(4)))
    assert listed == [[["pages/0", "pages/1"], ["pages/2", "pages/3"], ["pages/4"]]] * 4
    assert scans == []


@pytest.mark.parametrize(
    "value",
    ["2026-12-01T17:14:44.646Z", "2026-12-01T17:14:44Z", "2026-12-01T17:14:44.123456+02:00",
     "Tue, 01 Dec 2026 17:14:44 GMT", 1733000000, "1733000000.5", "2026-12-01T17:14:44"],
)  # fmt: skip
def test_the_fast_timestamp_parser_gives_botocores_answers(value: object) -> None:
    assert parse_timestamp(value) == botocore.utils.parse_timestamp(value)


def test_listings_parse_timestamps_with_the_fast_parser(
    upload_s3: SeaweedServer, upload_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing's LastModified (ISO 8601) no longer goes through botocore's dateutil parser; a HEAD's
    Last-Modified (an HTTP date) still does, and both give the same aware time."""
    client = make_s3_client(upload_s3.endpoint("timestamps"))
    client.put_object(Bucket=upload_bucket, Key="k", Body=b"x")
    slow: list[object] = []
    real = dateutil.parser.parse
    monkeypatch.setattr(dateutil.parser, "parse", lambda v, **kw: slow.append(v) or real(v, **kw))
    listed = client.list_objects_v2(Bucket=upload_bucket)["Contents"][0]["LastModified"]
    assert slow == []
    head = client.head_object(Bucket=upload_bucket, Key="k")["LastModified"]
    assert len(slow) == 1
    assert listed.tzinfo is not None and listed.replace(microsecond=0) == head
