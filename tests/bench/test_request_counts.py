"""The benchmark harness counts each tool's requests with SeaweedFS's own counters (issue 17: requests per
run); SeaweedServer.request_counts() must see exactly the requests made between two calls."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import start_seaweed


def test_request_counts_see_each_request_by_bucket_and_type(tmp_path: Path) -> None:
    server = start_seaweed(tmp_path / "s3", count_requests=True)
    try:
        client = server.client()
        client.create_bucket(Bucket="counted")
        client.create_bucket(Bucket="other")
        before = server.request_counts()
        client.put_object(Bucket="counted", Key="a", Body=b"x" * 100)
        client.put_object(Bucket="counted", Key="b", Body=b"y")
        client.get_object(Bucket="counted", Key="a")["Body"].read()
        client.head_object(Bucket="counted", Key="b")
        client.list_objects_v2(Bucket="counted")
        client.put_object(Bucket="other", Key="c", Body=b"z")
        after = server.request_counts()
    finally:
        server.stop()
    # bucket "" is the server's own: under load an internal listing of its buckets can land in between
    delta = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0) and key[0]}
    assert delta == {("counted", "PUT"): 2, ("counted", "GET"): 2, ("counted", "LIST"): 1, ("other", "PUT"): 1}

