"""A boto3 client for the AWS DeepRacer console's ``deepracer`` service (us-east-1 only).

boto3 has no ``deepracer`` service. deepracer-utils' ``python -m deepracer install-cli`` used to put its
full definition in ``~/.aws/models/deepracer/2019-04-01/service-2.json``; when that file exists it is
used. Otherwise the plugin's own definition (``data/deepracer/2019-04-01/service-2.json``: just
ImportModel, ListModels and GetModel, written from the documented shapes) is.

``DR_DEEPRACER_ENDPOINT_URL`` replaces the service URL (for a local test server; also for a proxy).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.session

from drtransfer.endpoints import Credentials

REGION = "us-east-1"  # the only region the console ever served
SERVICE_URL = f"https://deepracer-prod.{REGION}.amazonaws.com"
ENDPOINT_ENV = "DR_DEEPRACER_ENDPOINT_URL"
_DEFINITION = Path("deepracer") / "2019-04-01" / "service-2.json"
PLUGIN_MODELS = Path(__file__).resolve().parent / "data"


def installed_models_dir() -> Path:
    """Where install-cli puts service definitions (read at call time, so HOME can change)."""
    return Path(os.path.expanduser("~")) / ".aws" / "models"


def definition_dirs() -> list[Path]:
    """Directories searched for the definition, best first: install-cli's, then the plugin's."""
    installed = installed_models_dir()
    dirs = [installed] if (installed / _DEFINITION).is_file() else []
    return [*dirs, PLUGIN_MODELS]


def definition_path() -> Path:
    """The service-2.json the client will be built from."""
    return definition_dirs()[0] / _DEFINITION


def deepracer_client(credentials: Credentials | None, *, endpoint_url: str | None = None,
                     connect_timeout: float = 10.0, read_timeout: float = 60.0, max_attempts: int = 3) -> Any:
    """A ``deepracer`` client in us-east-1 signed with ``credentials`` (``None``: boto3's default chain)."""
    core = botocore.session.Session()
    core.set_config_variable("data_path", os.pathsep.join(str(p) for p in definition_dirs()))
    session = boto3.session.Session(botocore_session=core)
    config = botocore.config.Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return session.client(
        "deepracer",
        region_name=REGION,
        endpoint_url=endpoint_url or SERVICE_URL,
        aws_access_key_id=credentials.access_key if credentials else None,
        aws_secret_access_key=credentials.secret_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
        config=config,
    )
