"""The fixtures shared by more than one test directory, and small helpers for S3 trees.

Every fixture that tests in several directories use is defined here (and only here): a directory's own
conftest.py holds what that directory alone uses, and no conftest imports fixtures from another one.
Helpers without fixtures live in tests/infra (the DRfC setups and the command runner: tests/infra/drfc.py).

Two servers live for the whole session (``local_s3`` = DRfC's MinIO stand-in, ``upload_s3`` = the upload
target); each test gets fresh buckets on them, so tests never see each other's objects. Tests that
kill a server start their own with :func:`start_seaweed`. ``moto_url``, ``cognito`` and ``droa`` are
DRoA's sign-in and the fake DRoA, for the import tests and the secrets tests.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from drtransfer.locals3 import SeaweedServer
from tests.infra.drfc import drfc_config_for as drfc_config_for  # re-exported: its home was here
from tests.infra.droa_server import FakeDroa
from tests.infra.sigv4 import Secret

FIXTURES = Path(__file__).resolve().parents[1] / "core" / "src" / "drtransfer" / "demo_data" / "drfc-sample-training"

_counter = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With ``-n N --dist loadgroup`` (``./dev test``), the tests that share one expensive session resource
    run in one worker each: the Ray cluster (tests/scaleout) and the Docker Engine's containers."""
    for item in items:
        if "tests/scaleout/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("ray"))
        elif item.get_closest_marker("docker"):
            item.add_marker(pytest.mark.xdist_group("docker"))


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


# ---- DRoA's sign-in: moto's Cognito on 127.0.0.1 and the fake DRoA (tests/importers, tests/reliability) ----

PASSWORD = "Correct-Horse-9"
USERNAME = "racer@example.com"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # imported here: only the DRoA tests need moto

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Cognito:
    url: str
    user_pool_id: str
    client_id: str
    identity_pool_id: str
    issued: Secret


def _moto(service: str, url: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="moto", aws_secret_access_key="moto")


@pytest.fixture
def cognito(moto_url: str) -> Cognito:
    """A user pool with a client allowing USER_PASSWORD_AUTH, one user with a permanent password, and an
    identity pool trusting it; ``issued`` = the credentials the identity pool hands out."""
    idp = _moto("cognito-idp", moto_url)
    pool = idp.create_user_pool(PoolName=f"droa-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="website", ExplicitAuthFlows=flows)
    client = client["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username=USERNAME, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=USERNAME, Password=PASSWORD, Permanent=True)
    identity = _moto("cognito-identity", moto_url)
    provider = f"cognito-idp.us-east-1.amazonaws.com/{pool}"
    identity_pool = identity.create_identity_pool(
        IdentityPoolName=f"droa{uuid.uuid4().hex[:8]}", AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": provider, "ClientId": client}],
    )["IdentityPoolId"]
    # What the identity pool issues (moto hands every identity the same keys): the fake DRoA accepts only these.
    signed_in = idp.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId=client,
                                  AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD})
    token = signed_in["AuthenticationResult"]["IdToken"]
    who = identity.get_id(IdentityPoolId=identity_pool, Logins={provider: token})["IdentityId"]
    found = identity.get_credentials_for_identity(IdentityId=who, Logins={provider: token})["Credentials"]
    issued = Secret(found["AccessKeyId"], found["SecretKey"], found["SessionToken"])
    return Cognito(moto_url, pool, client, identity_pool, issued)


@pytest.fixture
def droa(cognito: Cognito, upload_s3: SeaweedServer) -> Iterator[FakeDroa]:
    """The fake DRoA (website, API, upload-bucket front on a real SeaweedFS bucket) signing in through ``cognito``."""
    bucket = unique_bucket("droa-uploads")
    upload_s3.create_bucket(bucket)
    fake = FakeDroa(upload_s3, bucket, cognito.url, cognito.user_pool_id, cognito.client_id,
                    cognito.identity_pool_id, issued=cognito.issued).start()
    yield fake
    fake.stop()


def droa_values(droa: FakeDroa) -> dict[str, str]:
    """The DRfC values (run file or system.env) that point drtransfer at ``droa`` as ``USERNAME``."""
    return {
        "DR_DROA_URL": droa.url,
        "DR_DROA_USERNAME": USERNAME,
        "DR_DROA_COGNITO_ENDPOINT_URL": droa.cognito_url,
        "DR_DROA_S3_ENDPOINT_URL": droa.s3_url,
    }
