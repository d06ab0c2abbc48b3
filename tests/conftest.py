"""Shared fixtures: real SeaweedFS servers on 127.0.0.1 and unique buckets per test.

Two servers live for the whole session (``local_s3`` = DRfC's MinIO stand-in, ``upload_s3`` = the upload
target); each test gets fresh buckets on them, so tests never see each other's objects. Tests that
kill a server start their own with :func:`start_seaweed`.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import DrfcFiles, write_drfc_config

FIXTURES = Path(__file__).resolve().parents[1] / "core" / "src" / "drtransfer" / "demo_data" / "drfc-sample-training"

_counter = itertools.count()


def start_seaweed(directory: Path, **kwargs: Any) -> SeaweedServer:
    return SeaweedServer(data_dir=directory, **kwargs).start()


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("weed-local"))
    yield server
    server.stop(graceful=False)


@pytest.fixture(scope="session")
def upload_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("weed-upload"))
    yield server
    server.stop(graceful=False)


@pytest.fixture(autouse=True)
def _free_session_buckets(request: pytest.FixtureRequest) -> Iterator[None]:
    """Delete the buckets a test created on the session servers: SeaweedFS gives each bucket a volume
    of its own and has a limited number of them (about 80), so buckets must not pile up. Buckets that
    existed before the test (module-scoped fixtures) are kept."""
    servers: list[tuple[SeaweedServer, set[str]]] = []
    for name in ("local_s3", "upload_s3"):
        if name in request.fixturenames:
            server: SeaweedServer = request.getfixturevalue(name)
            servers.append((server, _bucket_names(server)))
    yield
    for server, before in servers:
        if server.process is None or server.process.poll() is not None:
            continue
        for bucket in _bucket_names(server) - before:
            server.client().delete_bucket(Bucket=bucket)


def _bucket_names(server: SeaweedServer) -> set[str]:
    return {bucket["Name"] for bucket in server.client().list_buckets().get("Buckets", [])}


def unique_bucket(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def local_bucket(local_s3: SeaweedServer) -> str:
    name = unique_bucket("local")
    local_s3.create_bucket(name)
    return name


@pytest.fixture
def upload_bucket(upload_s3: SeaweedServer) -> str:
    name = unique_bucket("upload")
    upload_s3.create_bucket(name)
    return name


def drfc_config_for(
    directory: Path,
    local: SeaweedServer,
    local_bucket: str,
    upload: SeaweedServer,
    upload_bucket: str,
    runs: Sequence[tuple[str, str, str]],
) -> DrfcFiles:
    """DRfC configuration files (``run_id, model prefix, upload prefix`` per run) for runs that go from
    ``local`` to ``upload``, with the servers' own credentials."""
    return write_drfc_config(
        directory,
        local_url=local.url,
        local_keys=(local.access_key, local.secret_key),
        local_bucket=local_bucket,
        upload_url=upload.url,
        upload_keys=(upload.access_key, upload.secret_key),
        upload_bucket=upload_bucket,
        runs=runs,
    )


def list_tree(server: SeaweedServer, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` with its bytes (small test trees only)."""
    client = server.client()
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            out[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out


def list_multipart_uploads(server: SeaweedServer, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads
