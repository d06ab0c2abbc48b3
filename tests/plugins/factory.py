"""Model inventories without a server: SourceObjects for N checkpoints, an index and a reader that
serves bytes from a dict. Metadata and metrics are the real DRfC files of the demo data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from drtransfer.checkpoints import CheckpointIndex, group_checkpoints
from drtransfer.endpoints import Endpoint
from drtransfer.inventory import ModelInventory, parse_model_metadata
from drtransfer.operations import ObjectLocation, SourceObject
from drtransfer.runconfig import RunConfig
from drtransfer.samples import checkpoint_name, demo_data_dir

BUCKET = "bucket"
PREFIX = "rl-deepracer-sagemaker"
REAL_TRAINING_METRICS = (demo_data_dir() / "metrics" / "TrainingMetrics.json").read_bytes()
CHECKPOINT_FILES = (".data-00000-of-00001", ".index", ".meta")


def make_run(run_id: str = "0", prefix: str = PREFIX, values: Mapping[str, str] | None = None) -> RunConfig:
    local = Endpoint("local", "http://127.0.0.1:9", "us-east-1", None)
    upload = Endpoint("upload", "http://127.0.0.1:9", "us-east-1", None)
    return RunConfig(
        run_id=run_id,
        local=local,
        local_bucket=BUCKET,
        model_prefix=prefix,
        upload=upload,
        upload_bucket="target",
        upload_prefix=f"{prefix}-up",
        reward_key="custom_files/reward_function.py",
        metrics_prefix=f"{prefix}/metrics",
        region="us-east-1",
        values=dict(values or {}),
    )


def index_entry(number: int, metric: float | None) -> dict[str, Any]:
    return {"name": checkpoint_name(number), "avg_eval_metric": metric, "time_stamp": 100.0 * number}


def metrics_json(evaluations: Mapping[int, Sequence[tuple[float, float, float]]], per_iteration: int = 4) -> bytes:
    """A TrainingMetrics.json as simapp writes it: for each iteration k (0..max), ``per_iteration``
    training episodes, then the evaluation episodes given for k as (progress %, reward, seconds)."""
    rows: list[dict[str, Any]] = []
    episode = 0
    for k in range(max(evaluations, default=-1) + 1):
        for trial in range(1, per_iteration + 1):
            episode += 1
            rows.append(_row(episode, trial, "training", 10.0, 5.0, 2.0))
        for progress, reward, seconds in evaluations.get(k, ()):
            rows.append(_row(episode, per_iteration, "evaluation", progress, reward, seconds))
    return json.dumps({"metrics": rows, "version": 2.0, "best_model_metric": "progress"}).encode()


def _row(episode: int, trial: int, phase: str, progress: float, reward: float, seconds: float) -> dict[str, Any]:
    return {
        "reward_score": reward,
        "metric_time": episode * 10_000,
        "start_time": episode * 10_000 - int(seconds * 1000),
        "elapsed_time_in_milliseconds": int(seconds * 1000),
        "episode": episode,
        "trial": trial,
        "phase": phase,
        "completion_percentage": progress,
        "episode_status": "Lap complete" if progress >= 100 else "Off track",
    }


def make_inventory(
    checkpoints: Iterable[int] = (1, 2, 3),
    *,
    best: int | None = None,
    last: int | None = None,
    index: Mapping[str, Any] | None = None,
    missing: Mapping[int, Sequence[str]] | None = None,
    training_metrics: bytes | None = REAL_TRAINING_METRICS,
    extra: Mapping[str, bytes] | None = None,
    run: RunConfig | None = None,
) -> ModelInventory:
    """An inventory of ``checkpoints`` (complete unless ``missing`` names suffixes or ``"pb"`` to drop),
    the index (``best`` = middle, ``last`` = highest by default, or ``index`` verbatim) and the real
    metadata; ``training_metrics=None`` leaves TrainingMetrics.json out; ``extra`` adds objects."""
    run = run or make_run()
    numbers = sorted(checkpoints)
    missing = missing or {}
    files: dict[str, bytes] = {}
    data = demo_data_dir()
    files["model/model_metadata.json"] = (data / "model" / "model_metadata.json").read_bytes()
    files["ip/hyperparameters.json"] = (data / "ip" / "hyperparameters.json").read_bytes()
    files["reward_function.py"] = (data / "reward_function.py").read_bytes()
    if training_metrics is not None:
        files["metrics/TrainingMetrics.json"] = training_metrics
    files["metrics/EvaluationMetrics-20220709200242.json"] = (
        data / "metrics" / "EvaluationMetrics-20220709200242.json"
    ).read_bytes()
    for number in numbers:
        name = checkpoint_name(number)
        for suffix in CHECKPOINT_FILES:
            if suffix not in missing.get(number, ()):
                files[f"model/{name}{suffix}"] = b"c" * (10 + number)
        if "pb" not in missing.get(number, ()):
            files[f"model/model_{number}.pb"] = b"p" * (5 + number)
    if index is None:
        best = numbers[len(numbers) // 2] if best is None and numbers else best
        last = numbers[-1] if last is None and numbers else last
        index = {
            "best_checkpoint": index_entry(best, 80.0) if best is not None else None,
            "last_checkpoint": index_entry(last, 40.0) if last is not None else None,
        }
    files["model/deepracer_checkpoints.json"] = json.dumps(index).encode()
    files.update(extra or {})

    objects = {
        f"{run.model_prefix}/{rel}": SourceObject(
            ObjectLocation(run.local.name, run.local_bucket, f"{run.model_prefix}/{rel}"), len(body), f"etag-{rel}"
        )
        for rel, body in files.items()
    }
    bodies = {f"{run.model_prefix}/{rel}": body for rel, body in files.items()}

    def reader(obj: SourceObject) -> bytes:
        return bodies[obj.location.key]

    def obj(rel: str) -> SourceObject:
        return objects[f"{run.model_prefix}/{rel}"]

    model_dir = f"{run.model_prefix}/model/"
    model_files = {
        key[len(model_dir) :]: o
        for key, o in objects.items()
        if key.startswith(model_dir) and "/" not in key[len(model_dir) :]
    }
    index_url = f"s3://{run.local_bucket}/{run.model_prefix}/model/deepracer_checkpoints.json"
    metrics_root = f"{run.metrics_prefix}/"
    return ModelInventory(
        run=run,
        objects=objects,
        model_files=model_files,
        checkpoints=group_checkpoints(model_files),
        index=CheckpointIndex.parse(files["model/deepracer_checkpoints.json"], index_url),
        index_url=index_url,
        reward_function=obj("reward_function.py"),
        model_metadata=obj("model/model_metadata.json"),
        metadata=parse_model_metadata(files["model/model_metadata.json"], "metadata"),
        metadata_body=files["model/model_metadata.json"],
        hyperparameters=obj("ip/hyperparameters.json"),
        metrics=sorted((o for k, o in objects.items() if k.startswith(metrics_root)), key=lambda o: o.location.key),
        training_params=None,
        reader=reader,
    )
