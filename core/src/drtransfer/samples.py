"""Realistic DRfC model prefixes and configuration files, for the demo, the benchmarks and the tests.

Real files come from ``demo_data/drfc-sample-training`` (a real DRfC training's metadata, metrics and
reward function); checkpoint files are generated with the sizes of real DRfC output (a real listing of
a shallow network's model/ prefix; the other networks sized from their layers), optionally scaled down
for tests. Checkpoints are uploaded the way SageMaker's boto3 does it (multipart above 8 MiB), so their
ETags look like real ones.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from boto3.s3.transfer import TransferConfig

KiB = 1024
MiB = 1024 * KiB

# (.ckpt.data, .ckpt.index, .ckpt.meta, model_N.pb) in bytes, per neural_network.
NETWORK_SIZES: dict[str, tuple[int, int, int, int]] = {
    "shallow": (45 * MiB, 1126, 1 * MiB, 22 * MiB),
    "standard": (28 * MiB, 1126, 1 * MiB, 14 * MiB),
    "deep": (int(8.5 * MiB), 1126, 1 * MiB, int(4.2 * MiB)),
}
NETWORK_NAMES = {
    "shallow": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "standard": "DEEP_CONVOLUTIONAL_NETWORK",
    "deep": "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
}
STEPS_PER_ITERATION = 2620


def demo_data_dir() -> Path:
    """The real DRfC sample training shipped with the package."""
    return Path(str(resources.files("drtransfer") / "demo_data" / "drfc-sample-training"))


def checkpoint_name(number: int) -> str:
    return f"{number}_Step-{number * STEPS_PER_ITERATION + 1000}.ckpt"


@dataclass
class SeededModel:
    bucket: str
    prefix: str
    checkpoints: list[int]
    last: int
    best: int
    files: dict[str, bytes] = field(default_factory=dict, repr=False)  # small files by key relative to prefix
    sizes: dict[str, int] = field(default_factory=dict)  # every key relative to prefix -> size

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def _training_params(bucket: str, prefix: str, world: str) -> bytes:
    data = {
        "AWS_REGION": "us-east-1",
        "WORLD_NAME": world,
        "RACE_TYPE": "TIME_TRIAL",
        "BODY_SHELL_TYPE": "deepracer",
        "CAR_COLOR": "Red",
        "CAR_NAME": "FastCar",
        "DISPLAY_NAME": "FastCar",
        "RACER_NAME": "FastCar",
        "SAGEMAKER_SHARED_S3_BUCKET": bucket,
        "SAGEMAKER_SHARED_S3_PREFIX": prefix,
        "METRICS_S3_BUCKET": bucket,
        "METRICS_S3_OBJECT_KEY": f"{prefix}/metrics/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": "custom_files/model_metadata.json",
        "REWARD_FILE_S3_KEY": "custom_files/reward_function.py",
        "SIMTRACE_S3_BUCKET": bucket,
        "SIMTRACE_S3_PREFIX": f"{prefix}/training-simtrace",
        "NUMBER_OF_EPISODES": "0",
        "ENABLE_DOMAIN_RANDOMIZATION": "False",
        "NUMBER_OF_RESETS": "0",
        "CHANGE_START_POSITION": "True",
        "ALTERNATE_DRIVING_DIRECTION": "False",
    }
    # DRfC dumps every value as a quoted string (yaml default_style="'").
    return yaml.safe_dump(data, default_style="'", sort_keys=False).encode()


def seed_model(
    client: Any,
    bucket: str,
    prefix: str,
    *,
    checkpoints: Sequence[int] = (1, 2, 3),
    best: int | None = None,
    network: str = "shallow",
    scale: float = 1.0,
    world: str = "reInvent2019_track",
    seed: int = 0,
    with_training_params: bool = True,
) -> SeededModel:
    """Write a DRfC training prefix ``s3://bucket/prefix/`` with ``checkpoints`` (all complete).

    ``last`` is the highest checkpoint number, ``best`` defaults to the middle one. ``scale`` multiplies
    the generated checkpoint sizes (1.0 = real sizes).
    """
    numbers = sorted(checkpoints)
    best = numbers[len(numbers) // 2] if best is None else best
    rng = random.Random(f"{bucket}/{prefix}/{seed}")
    model = SeededModel(bucket, prefix, numbers, last=numbers[-1], best=best)
    transfer = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)

    def put(relative: str, body: bytes, keep: bool = True) -> None:
        key = f"{prefix}/{relative}"
        if len(body) > 8 * MiB:
            client.upload_fileobj(io.BytesIO(body), bucket, key, Config=transfer)
        else:
            client.put_object(Bucket=bucket, Key=key, Body=body)
        model.sizes[relative] = len(body)
        if keep and len(body) <= 1 * MiB:
            model.files[relative] = body

    data = demo_data_dir()
    metadata = json.loads((data / "model" / "model_metadata.json").read_text())
    metadata["neural_network"] = NETWORK_NAMES[network]
    metadata_bytes = json.dumps(metadata, indent=2).encode()
    put("model/model_metadata.json", metadata_bytes)
    put("ip/hyperparameters.json", (data / "ip" / "hyperparameters.json").read_bytes())
    put("ip/ip.json", b'{"IP": "172.18.0.5"}')
    put("ip/done", b"done")
    put("reward_function.py", (data / "reward_function.py").read_bytes())
    for metrics_file in sorted((data / "metrics").iterdir()):
        put(f"metrics/{metrics_file.name}", metrics_file.read_bytes())
    if with_training_params:
        put("training_params.yaml", _training_params(bucket, prefix, world))

    sizes = [max(1, int(size * scale)) for size in NETWORK_SIZES[network]]
    for number in numbers:
        name = checkpoint_name(number)
        for suffix, size in zip((".data-00000-of-00001", ".index", ".meta"), sizes[:3], strict=True):
            put(f"model/{name}{suffix}", rng.randbytes(size), keep=False)
        put(f"model/model_{number}.pb", rng.randbytes(sizes[3]), keep=False)

    def entry(number: int, metric: float) -> dict[str, Any]:
        return {"name": checkpoint_name(number), "avg_eval_metric": metric, "time_stamp": 100.0 * number}

    index = {"best_checkpoint": entry(best, 80.0), "last_checkpoint": entry(model.last, 40.0)}
    put("model/deepracer_checkpoints.json", json.dumps(index).encode())
    put("model/.coach_checkpoint", checkpoint_name(model.last).encode())
    put("model/.ready", b"")
    return model


@dataclass(frozen=True)
class DrfcFiles:
    """DRfC configuration written by :func:`write_drfc_config`."""

    system_env: Path
    run_files: list[Path]
    credentials: Path
    environ: dict[str, str]


def write_drfc_config(
    directory: Path,
    *,
    local_url: str,
    local_keys: tuple[str, str],
    local_bucket: str,
    upload_url: str,
    upload_keys: tuple[str, str],
    upload_bucket: str,
    runs: Sequence[tuple[str, str, str]],
) -> DrfcFiles:
    """Write ``system.env``, one ``run-<id>.env`` per ``(run_id, model_prefix, upload_prefix)`` and an
    AWS credentials file with the profiles they name, as a DRfC user with a remote MinIO would have."""
    directory.mkdir(parents=True, exist_ok=True)
    credentials = directory / "aws-credentials"
    credentials.write_text(
        f"[drt-local]\naws_access_key_id = {local_keys[0]}\naws_secret_access_key = {local_keys[1]}\n\n"
        f"[drt-upload]\naws_access_key_id = {upload_keys[0]}\naws_secret_access_key = {upload_keys[1]}\n"
    )
    credentials.chmod(0o600)
    (directory / "aws-config").write_text("")
    system_env = directory / "system.env"
    system_env.write_text(
        "# DRfC system.env (written by deepracer-transfer)\n"
        "DR_CLOUD=remote\n"
        f"DR_REMOTE_MINIO_URL={local_url}\n"
        f"DR_LOCAL_S3_BUCKET={local_bucket}\n"
        "DR_LOCAL_S3_PROFILE=drt-local\n"
        f"DR_UPLOAD_S3_BUCKET={upload_bucket}\n"
        "DR_UPLOAD_S3_PROFILE=drt-upload\n"
        f"DR_UPLOAD_S3_ENDPOINT_URL={upload_url}\n"
        "DR_AWS_APP_REGION=us-east-1\n"
    )
    run_files = []
    for run_id, model_prefix, upload_prefix in runs:
        run_file = directory / f"run-{run_id}.env"
        run_file.write_text(
            f"DR_RUN_ID={run_id}\n"
            "DR_WORLD_NAME=reInvent2019_track\n"
            "DR_RACE_TYPE=TIME_TRIAL\n"
            f"DR_LOCAL_S3_MODEL_PREFIX={model_prefix}\n"
            f"DR_UPLOAD_S3_PREFIX={upload_prefix}\n"
            "DR_LOCAL_S3_CUSTOM_FILES_PREFIX=custom_files\n"
            "DR_LOCAL_S3_REWARD_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/reward_function.py\n"
            "DR_LOCAL_S3_METRICS_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX/metrics\n"
        )
        run_files.append(run_file)
    environ = {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(directory / "aws-config"),
    }
    return DrfcFiles(system_env, run_files, credentials, environ)
