"""Fixtures for the import targets: moto's Cognito on 127.0.0.1, the fake DRoA (website, API, upload-bucket
front on a real SeaweedFS bucket), the fake AWS DeepRacer console, and seeded DRfC runs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from drtransfer.engine import EngineSettings
from drtransfer.importing import ImportOptions
from drtransfer.inventory import inspect_model
from drtransfer.locals3 import SeaweedServer
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.samples import SeededModel, seed_model
from drtransfer.workflow import PreparedModel
from tests.conftest import unique_bucket
from tests.infra.console_server import FakeConsole
from tests.infra.droa_server import FakeDroa
from tests.infra.sigv4 import Secret

SCALE = 0.01
PASSWORD = "Correct-Horse-9"
USERNAME = "racer@example.com"
ROLE = "arn:aws:iam::123456789012:role/DeepRacerImport"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
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
    bucket = unique_bucket("droa-uploads")
    upload_s3.create_bucket(bucket)
    fake = FakeDroa(upload_s3, bucket, cognito.url, cognito.user_pool_id, cognito.client_id,
                    cognito.identity_pool_id, issued=cognito.issued).start()
    yield fake
    fake.stop()


@pytest.fixture
def console(upload_s3: SeaweedServer) -> Iterator[FakeConsole]:
    """The console with 30 models already (two ListModels pages of 25), one named ``taken-name``."""
    client = upload_s3.client()

    def read(bucket: str, key: str) -> bytes | None:
        try:
            body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception:
            return None
        return body

    existing = [f"old-model-{i}" for i in range(29)] + ["taken-name"]
    fake = FakeConsole(Secret(upload_s3.access_key, upload_s3.secret_key), read, existing=existing).start()
    yield fake
    fake.stop()


class Secrets:
    """A SecretSource that counts how often it was asked (a password must be asked once, or not at all)."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.password = password
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.password


def edit_training_params(server: SeaweedServer, bucket: str, prefix: str, values: dict[str, Any]) -> None:
    """Change a seeded model's ``training_params.yaml`` (written back DRfC's way: every value quoted);
    a value of ``None`` removes the key."""
    client = server.client()
    key = f"{prefix}/training_params.yaml"
    data = yaml.safe_load(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data.update(values)
    data = {k: v for k, v in data.items() if v is not None}
    client.put_object(Bucket=bucket, Key=key, Body=yaml.safe_dump(data, default_style="'").encode())


@dataclass
class Runs:
    """Seeded DRfC runs on the session SeaweedFS servers, as PreparedModels ready for the importers."""

    local: SeaweedServer
    upload: SeaweedServer
    local_bucket: str
    upload_bucket: str
    host: PluginHost
    values: dict[str, str] = field(default_factory=dict)
    seeded: dict[str, SeededModel] = field(default_factory=dict)

    def run(self, run_id: str, prefix: str, upload_prefix: str | None = None, **values: str) -> RunConfig:
        return RunConfig(
            run_id=run_id, local=self.local.endpoint("local"), local_bucket=self.local_bucket, model_prefix=prefix,
            upload=self.upload.endpoint("upload"), upload_bucket=self.upload_bucket,
            upload_prefix=upload_prefix or f"{prefix}-up", reward_key="custom_files/reward_function.py",
            metrics_prefix=f"{prefix}/metrics", region="us-east-1", values={**self.values, **values},
        )

    def seed(self, run_id: str, prefix: str, *, checkpoint: str = "last", upload_prefix: str | None = None,
             metadata: Callable[[dict[str, Any]], None] | None = None, world: str = "reInvent2019_track",
             params: dict[str, Any] | None = None, scale: float = SCALE, **values: str) -> PreparedModel:
        client = self.local.client()
        self.seeded[run_id] = seed_model(client, self.local_bucket, prefix, checkpoints=(1, 2, 3), best=2,
                                         scale=scale, world=world)
        if metadata is not None:
            key = f"{prefix}/model/model_metadata.json"
            data = json.loads(client.get_object(Bucket=self.local_bucket, Key=key)["Body"].read())
            metadata(data)
            client.put_object(Bucket=self.local_bucket, Key=key, Body=json.dumps(data).encode())
        if params is not None:
            edit_training_params(self.local, self.local_bucket, prefix, params)
        run = self.run(run_id, prefix, upload_prefix, **values)
        inventory = inspect_model(run, client)
        return PreparedModel(run, inventory, self.host.select_checkpoint(checkpoint, inventory, run))


@pytest.fixture
def runs(local_s3: SeaweedServer, upload_s3: SeaweedServer, local_bucket: str, upload_bucket: str) -> Runs:
    return Runs(local_s3, upload_s3, local_bucket, upload_bucket, get_plugin_manager())


def droa_values(droa: FakeDroa) -> dict[str, str]:
    return {
        "DR_DROA_URL": droa.url,
        "DR_DROA_USERNAME": USERNAME,
        "DR_DROA_COGNITO_ENDPOINT_URL": droa.cognito_url,
        "DR_DROA_S3_ENDPOINT_URL": droa.s3_url,
    }


def options(tmp_path: Path, secret: Secrets | None = None, **kwargs: Any) -> ImportOptions:
    """Import options isolated from the user's environment: the credential cache lives in ``tmp_path``."""
    environ = {"DRTRANSFER_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    defaults: dict[str, Any] = {"secret": secret, "poll_interval": 0.01, "wait_timeout": 30.0, "environ": environ}
    defaults.update(kwargs)
    defaults.setdefault("engine", EngineSettings(processes=0, concurrency=4))
    return ImportOptions(**defaults)

