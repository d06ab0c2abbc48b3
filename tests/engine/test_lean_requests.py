"""Server-side CopyObject and PUTs of bytes the plan holds go over the lean data path's connections (issue
17 item 1: botocore's request costs about ten times the CPU), with botocore's semantics: the source's
metadata is kept, the copy is checked against the source ETag, a PUT carries its Content-MD5, and a copy
answered 200 with an error document is sent again as botocore does."""

from __future__ import annotations

import threading

import pytest

from drtransfer.endpoints import Credentials, Endpoint
from drtransfer.engine import EngineSettings, run_transfer
from drtransfer.engine import lean as lean_module
from drtransfer.engine.lean import LeanPath, server_copy
from drtransfer.engine.runtime import Meter, Runtime, TaskError
from drtransfer.locals3 import SeaweedServer
from drtransfer.operations import ObjectLocation, PutBytes
from tests.engine import engine_helpers as helpers
from tests.infra.fakehttp import FakeServer, Request, Response

KEY = "a b+c=d/é~x.json"  # needs percent-encoding in the path, the copy source and the signature


def test_same_store_copies_and_put_bytes_go_over_lean_connections(
    local_s3: SeaweedServer, local_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = helpers.count_calls(monkeypatch, lean_module, ("server_copy", "put_bytes"))
    client = local_s3.client()
    data = {KEY: helpers.random_bytes(70_000), "mp": helpers.random_bytes(12 * 1024 * 1024)}
    helpers.put_single(client, local_bucket, KEY, data[KEY], Metadata={"kept": "yes"}, ContentType="text/x-json")
    helpers.put_multipart(client, local_bucket, "mp", data["mp"])
    target_bucket = local_bucket + "-lean"
    local_s3.create_bucket(target_bucket)
    index = PutBytes(ObjectLocation("local-copy", target_bucket, "t/index.json"), b'{"n": 1}', "application/json")
    plan = helpers.copy_plan(
        "m", local_s3, "local", local_bucket, sorted(data), "local-copy", target_bucket, "t/", extra=[index]
    )
    endpoints = {"local": local_s3.endpoint("local"), "local-copy": local_s3.endpoint("local-copy")}

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"))

    assert result.status == "ok", result.error
    assert sorted(used) == ["put_bytes", "server_copy", "server_copy"]
    assert helpers.strategies(result) == {f"t/{KEY}": "copy-object", "t/mp": "copy-object", "t/index.json": "put"}
    helpers.assert_copied(local_s3, target_bucket, "t/", {**data, "index.json": b'{"n": 1}'})
    for key in data:  # a server-side copy keeps the source's ETag, type and metadata
        got = client.head_object(Bucket=target_bucket, Key="t/" + key)
        want = client.head_object(Bucket=local_bucket, Key=key)
        assert (got["ETag"], got["ContentType"], got["Metadata"]) == (
            want["ETag"], want["ContentType"], want["Metadata"]
        )  # fmt: skip
    assert client.head_object(Bucket=target_bucket, Key="t/index.json")["ContentType"] == "application/json"


class CopyAnswers:
    """A stand-in S3 that answers each CopyObject with the next of ``answers`` (status, document)."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers = answers
        self.seen: list[Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.seen.append(request)
            status, body = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return Response(status, body, {"Content-Type": "application/xml"})


ERROR_200 = b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>try again</Message></Error>"
RESULT = (
    b'<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<LastModified>2026-12-01T20:00:00.000Z</LastModified><ETag>&quot;0123abcd&quot;</ETag></CopyObjectResult>"
)


def lean_copy(server: FakeServer, client_max_attempts: int) -> tuple[str, LeanPath]:
    endpoint = Endpoint(name="s", url=server.url, region="us-east-1", credentials=Credentials("ak", "sk"))
    settings = EngineSettings(processes=0, client_max_attempts=client_max_attempts, read_timeout=5.0)
    rt = Runtime({"s": endpoint}, settings, lambda report: None, threading.Event())
    path = LeanPath(rt)
    source, target = ObjectLocation("s", "src", KEY), ObjectLocation("s", "dst", "t/" + KEY)
    try:
        return server_copy(path, source, target, "copy it", Meter(lambda report: None, -1, 0)), path
    finally:
        path.close()


def test_a_copy_answered_200_with_an_error_document_is_sent_again() -> None:
    answers = CopyAnswers([(200, ERROR_200), (200, b""), (200, b"\n \n" + RESULT)])  # S3's keep-alive spaces
    server = FakeServer(answers)
    try:
        etag, _ = lean_copy(server, client_max_attempts=3)
    finally:
        server.stop()
    assert etag == '"0123abcd"'
    assert len(answers.seen) == 3  # the error document, then an empty answer: both sent again
    first = answers.seen[0]
    assert (first.method, first.path) == ("PUT", "/dst/t/a%20b%2Bc%3Dd/%C3%A9~x.json")
    assert first.header("x-amz-copy-source") == "src/a%20b%2Bc%3Dd/%C3%A9~x.json"
    assert first.header("x-amz-metadata-directive") == "COPY"
    assert first.header("Authorization").startswith("AWS4-HMAC-SHA256 Credential=ak/")


def failed_copy(answers: CopyAnswers, client_max_attempts: int) -> TaskError:
    server = FakeServer(answers)
    try:
        with pytest.raises(TaskError) as caught:
            lean_copy(server, client_max_attempts)
    finally:
        server.stop()
    return caught.value


def test_a_copy_that_keeps_failing_is_the_engines_to_retry() -> None:
    answers = CopyAnswers([(200, ERROR_200)])
    error = failed_copy(answers, client_max_attempts=1)
    assert len(answers.seen) == 2  # the request and botocore's one retry
    assert error.retryable
    assert error.code == "InternalError"


def test_a_refused_copy_is_not_sent_again() -> None:
    denied = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    answers = CopyAnswers([(403, denied)])
    error = failed_copy(answers, client_max_attempts=3)
    assert len(answers.seen) == 1
    assert error.code == "AccessDenied"
    assert not error.retryable
