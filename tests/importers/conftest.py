"""Fixtures for the import targets: the fake AWS DeepRacer console and seeded DRfC runs (moto's Cognito and
the fake DRoA are in tests/conftest.py: tests/reliability uses them too)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from drtransfer.engine import EngineSettings
from drtransfer.importing import ImportOptions
from drtransfer.inventory import inspect_model
from drtransfer.locals3 import SeaweedServer
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.samples import SeededModel, seed_model
from drtransfer.workflow import PreparedModel
from tests.conftest import PASSWORD, droa_values
from tests.infra.console_server import FakeConsole
from tests.infra.droa_server import FakeDroa
from tests.infra.sigv4 import Secret

SCALE = 0.01
ROLE = "arn:aws:iam::123456789012:role/DeepRacerImport"


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


def import_target_values(droa: FakeDroa, console: FakeConsole) -> dict[str, str]:
    """The system.env values that point the import commands at the fake DRoA and the fake console."""
    return {**droa_values(droa), "DR_UPLOAD_S3_ROLE": ROLE, "DR_DEEPRACER_ENDPOINT_URL": console.url}


def options(tmp_path: Path, secret: Secrets | None = None, **kwargs: Any) -> ImportOptions:
    """Import options isolated from the user's environment: the credential cache lives in ``tmp_path``."""
    environ = {"DRTRANSFER_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    defaults: dict[str, Any] = {"secret": secret, "poll_interval": 0.01, "wait_timeout": 30.0, "environ": environ}
    defaults.update(kwargs)
    defaults.setdefault("engine", EngineSettings(processes=0, concurrency=4))
    return ImportOptions(**defaults)

