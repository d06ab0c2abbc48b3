"""The lean data path over TLS (issue 17 item 1: ``recv_into`` a reused buffer where ``os.splice`` cannot
work): bodies arrive exact and verified, against a real SeaweedFS serving HTTPS with a private CA that
the user trusts through ``AWS_CA_BUNDLE``, as botocore's clients do (a self-hosted MinIO on TLS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drtransfer.endpoints import Endpoint
from drtransfer.engine import MiB, run_transfer
from drtransfer.engine import lean as lean_module
from drtransfer.locals3 import SeaweedServer
from tests.conftest import list_multipart_uploads, list_tree, start_seaweed
from tests.engine import engine_helpers as helpers
from tests.infra.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_s3(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("weed-tls"), tls=(tls_files.cert, tls_files.key))
    yield server
    server.stop(graceful=False)


def tls_endpoint(server: SeaweedServer, name: str) -> Endpoint:
    plain = server.endpoint(name)
    return Endpoint(name=name, url=server.https_url, region=plain.region, credentials=plain.credentials)


@pytest.mark.parametrize("direction", ["from-tls", "to-tls"])
def test_lean_copies_over_tls_with_the_ca_botocore_trusts(
    tls_s3: SeaweedServer, tls_files: TlsFiles, direction: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_files.ca))
    used = helpers.count_calls(monkeypatch, lean_module, ("copy_small", "copy_multipart"))
    client = tls_s3.client()
    bucket = f"tls-{direction}"
    client.create_bucket(Bucket=bucket)
    data = {"small.json": helpers.random_bytes(300_000), "mp": helpers.random_bytes(13 * MiB)}
    helpers.put_single(client, bucket, "small.json", data["small.json"])
    helpers.put_multipart(client, bucket, "mp", data["mp"])
    # One server, two URLs: not the same store to the engine, so every body is streamed through it.
    tls, plain = tls_endpoint(tls_s3, "tls"), tls_s3.endpoint("plain")
    source, target = (tls, plain) if direction == "from-tls" else (plain, tls)
    endpoints = {"src": Endpoint("src", source.url, source.region, source.credentials),
                 "dst": Endpoint("dst", target.url, target.region, target.credentials)}  # fmt: skip
    plan = helpers.copy_plan("m", tls_s3, "src", bucket, sorted(data), "dst", bucket, "t/")

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"))

    assert result.status == "ok", result.error
    assert sorted(used) == ["copy_multipart", "copy_small"]  # both bodies over the lean path's TLS side
    helpers.assert_copied(tls_s3, bucket, "t/", data)
    for key in data:  # the multipart object kept its layout: its part ETags were checked
        assert (
            client.head_object(Bucket=bucket, Key="t/" + key)["ETag"]
            == client.head_object(Bucket=bucket, Key=key)["ETag"]
        )
    assert list_multipart_uploads(tls_s3, bucket) == []


def test_a_server_whose_ca_is_not_trusted_is_refused(tls_s3: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    client = tls_s3.client()
    client.create_bucket(Bucket="untrusted")
    helpers.put_single(client, "untrusted", "small.json", b"{}")
    endpoints = {"src": tls_endpoint(tls_s3, "src"), "dst": tls_s3.endpoint("dst")}
    plan = helpers.copy_plan("m", tls_s3, "src", "untrusted", ["small.json"], "dst", "untrusted", "t/")

    [result] = run_transfer([plan], endpoints, helpers.base_settings(0, data_path="lean"))

    assert result.status == "failed"
    assert [op.attempts for op in result.operations] == [1]  # a setup to fix, not an outage to wait out
    expected = (
        "presented a TLS certificate this machine does not trust (unable to get local issuer certificate); "
        "if a private CA signed it, set AWS_CA_BUNDLE"
    )
    assert expected in (result.error or ""), result.error
    assert list_tree(tls_s3, "untrusted", "t/") == {}
