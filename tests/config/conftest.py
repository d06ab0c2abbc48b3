"""A DRfC directory in tmp (:class:`DrfcDir`): system.env, run files, experiments and a real AWS credentials file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

# Lines as DRfC's bin/init.sh leaves defaults/template-system.env for DR_CLOUD=local (placeholders replaced).
SYSTEM_ENV = """DR_CLOUD=local
DR_AWS_APP_REGION=us-east-1
DR_UPLOAD_S3_PROFILE=default
DR_UPLOAD_S3_BUCKET=not-defined
DR_LOCAL_S3_BUCKET=bucket
DR_LOCAL_S3_PROFILE=minio
DR_GUI_ENABLE=False
DR_KINESIS_STREAM_NAME=
DR_SIMAPP_SOURCE=awsdeepracercommunity/deepracer-simapp
DR_SIMAPP_VERSION=5.3.3-gpu
# DR_REMOTE_MINIO_URL=http://mynas:9000
# DR_EXPERIMENT_NAME=
## DRoA Integration
# DR_DROA_URL=https://xxxx.cloudfront.net
"""

KEYS = {
    "minio": ("MINIOKEY0001", "minio-secret"),
    "default": ("AKIADEFAULT01", "default-secret"),
    "other": ("AKIAOTHER0001", "other-secret"),
}


def run_env(run_id: str, model_prefix: str, upload_prefix: str = "$DR_LOCAL_S3_MODEL_PREFIX-1", extra: str = "") -> str:
    """A run.env shaped like DRfC's defaults/template-run.env (a representative subset of its lines)."""
    return (
        f"DR_RUN_ID={run_id}\n"
        "DR_WORLD_NAME=reinvent_base\n"
        "DR_RACE_TYPE=TIME_TRIAL\n"
        "DR_CAR_NAME=FastCar\n"
        "DR_DISPLAY_NAME=$DR_CAR_NAME\n"
        "#DR_EVAL_RTF=1.0\n"
        f"DR_LOCAL_S3_MODEL_PREFIX={model_prefix}\n"
        "DR_LOCAL_S3_CUSTOM_FILES_PREFIX=custom_files\n"
        "DR_LOCAL_S3_REWARD_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/reward_function.py\n"
        "DR_LOCAL_S3_METRICS_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX/metrics\n"
        f"DR_UPLOAD_S3_PREFIX={upload_prefix}\n"
        "DR_OA_OBJECT_POSITIONS=\n"
        f"{extra}"
        "DR_H2B_BOT_CAR_PENALTY=5.0"  # the template ends without a newline
    )


@dataclass
class DrfcDir:
    """A DRfC installation directory; ``environ`` is a clean process environment that points boto at the
    credentials file written here (and never at the real ~/.aws or the instance metadata service)."""

    root: Path
    environ: dict[str, str]

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def system(self, extra: str = "", *, bucket: str = "upload-bucket") -> Path:
        text = SYSTEM_ENV.replace("DR_UPLOAD_S3_BUCKET=not-defined", f"DR_UPLOAD_S3_BUCKET={bucket}")
        return self.write("system.env", text + extra)

    def run(
        self,
        name: str,
        run_id: str,
        model_prefix: str,
        upload_prefix: str = "$DR_LOCAL_S3_MODEL_PREFIX-1",
        extra: str = "",
    ) -> Path:
        return self.write(name, run_env(run_id, model_prefix, upload_prefix, extra))

    def activated(self, run_file: Path, values: Mapping[str, str]) -> dict[str, str]:
        """The environment of a shell where ``source bin/activate.sh run_file`` ran (given its values)."""
        return {
            **self.environ,
            **values,
            "DR_DIR": str(self.root),
            "DR_CONFIG": str(run_file),
            "DR_LOCAL_S3_ENDPOINT_URL": "http://localhost:9000",
            "DR_MINIO_URL": "http://minio:9000",
            "DR_ROBOMAKER_TRAIN_PORT": "8080-8089",
            "DR_UPLOAD_PROFILE": "--profile default",
            "DR_LOCAL_ACCESS_KEY_ID": KEYS["minio"][0],
            "DR_LOCAL_SECRET_ACCESS_KEY": KEYS["minio"][1],
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@pytest.fixture
def drfc(tmp_path: Path) -> DrfcDir:
    """An empty DRfC directory with a home whose ~/.aws holds the ``KEYS`` profiles (no servers: the
    seeded setups of the end-to-end tests are tests/infra/drfc.py's ``DrfcSetup``)."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    credentials = home / ".aws" / "credentials"
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\n"
            for name, (key, secret) in KEYS.items()
        )
    )
    config = home / ".aws" / "config"
    config.write_text("[default]\nregion = us-east-1\n")
    environ = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(config),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    root = tmp_path / "deepracer-for-cloud"
    root.mkdir()
    return DrfcDir(root, environ)
