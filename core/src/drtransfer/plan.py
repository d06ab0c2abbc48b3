"""Planning: the operations that put one model in the importable layout at its target. Pure.

Target keys (deepracer-domain §3.3 step 9, without DRfC's bugs)::

    model/N_Step-M.ckpt.data-00000-of-00001, .index, .meta   copies of the chosen checkpoint only
    model/model_N.pb                                           copy
    model/model_metadata.json                                  copy of the source's model/model_metadata.json
    reward_function.py                                         --reward-function, else the prefix root's, else
                                                               DR_LOCAL_S3_REWARD_KEY (not for -p): copy or put
    metrics/...                                                every object of the metrics prefix
    training_params.yaml                                       the source's (S3 fields rewritten), else generated
    ip/hyperparameters.json                                    copy
    model/deepracer_checkpoints.json   (commit)                last = best = the chosen entry
    model/.coach_checkpoint            (commit)                the chosen checkpoint's name
    model_metadata.json                (commit)                copy, at the root

Commit operations run only after every other operation of the model succeeded, so a half-finished
upload never looks importable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from drtransfer.checkpoints import CHECKPOINT_SUFFIXES, Selection
from drtransfer.errors import ModelError
from drtransfer.inventory import LocalFile, ModelInventory
from drtransfer.operations import CopyObject, DeleteObject, ModelPlan, ObjectLocation, PutBytes, SourceObject


def _target(root: ObjectLocation, relative: str) -> ObjectLocation:
    return ObjectLocation(root.endpoint, root.bucket, f"{root.key.rstrip('/')}/{relative}")


def checkpoint_index_bytes(selection: Selection) -> bytes:
    entry = selection.index_entry
    return json.dumps({"last_checkpoint": entry, "best_checkpoint": entry}).encode()


def plan_model(model: ModelInventory, selection: Selection, target: ObjectLocation) -> ModelPlan:
    """The plan for ``model`` with checkpoint ``selection`` at ``target`` (bucket + prefix, no slash)."""
    run = model.run
    root = ObjectLocation(target.endpoint, target.bucket, target.key.strip("/") + "/")
    plan = ModelPlan(model_id=run.run_id, target_root=root, notes=[selection.explanation])

    def copy(source: SourceObject, relative: str, commit: bool = False) -> None:
        plan.add(CopyObject(source, _target(target, relative), commit=commit))

    ckpt = selection.checkpoint
    for suffix in CHECKPOINT_SUFFIXES:
        copy(ckpt.files[suffix], f"model/{ckpt.name}{suffix}")
    copy(ckpt.files["pb"], f"model/model_{ckpt.number}.pb")
    copy(model.model_metadata, "model/model_metadata.json")
    reward = model.reward_function
    if reward is None:
        raise ModelError(f"{model.url('')} was inspected without its reward function, which an upload needs.")
    if isinstance(reward, LocalFile):
        plan.add(PutBytes(_target(target, "reward_function.py"), reward.body, "text/x-python"))
    else:
        copy(reward, "reward_function.py")
    metrics_root = run.metrics_prefix.strip("/") + "/"
    for obj in model.metrics:
        copy(obj, "metrics/" + obj.location.key[len(metrics_root) :])
    params = training_params_for(model, target)
    plan.add(PutBytes(_target(target, "training_params.yaml"), dump_training_params(params), "application/x-yaml"))
    copy(model.hyperparameters, "ip/hyperparameters.json")
    # The commit objects: only after everything above is in place.
    plan.add(
        PutBytes(
            _target(target, "model/deepracer_checkpoints.json"),
            checkpoint_index_bytes(selection),
            "application/json",
            commit=True,
        )
    )
    plan.add(PutBytes(_target(target, "model/.coach_checkpoint"), ckpt.name.encode(), "text/plain", commit=True))
    copy(model.model_metadata, "model_metadata.json", commit=True)
    return plan


def add_wipe(plan: ModelPlan, existing: Mapping[str, int]) -> None:
    """``-w``: delete every existing target object under the plan's root that the plan does not write.

    ``existing`` maps target keys to sizes (a listing of exactly the target prefix); a key outside the
    root is refused, never deleted.
    """
    root = plan.target_root
    if not root.key.strip("/"):
        raise ModelError(f"Refusing to wipe s3://{root.bucket}/: the target prefix is empty.")
    keep = plan.target_keys()
    for key, size in sorted(existing.items()):
        if not key.startswith(root.key):
            raise ModelError(f"Refusing to delete s3://{root.bucket}/{key}: it is outside {root.url}.")
        if key not in keep:
            plan.add(DeleteObject(ObjectLocation(root.endpoint, root.bucket, key), size))


# ---- training_params.yaml -------------------------------------------------------------------------


def training_params_for(model: ModelInventory, target: ObjectLocation) -> dict[str, Any]:
    """The source's training params (``training_params_1.yaml`` preferred) with every S3 field pointing
    at ``target``; generated from the run's ``DR_*`` values only when the source has none."""
    run = model.run
    prefix = target.key.strip("/")
    if model.training_params is None:
        data = _generated_training_params(model)
    else:
        url = f"s3://{model.training_params.location.bucket}/{model.training_params.location.key}"
        try:
            loaded = yaml.safe_load(model.read(model.training_params))
        except yaml.YAMLError as error:
            raise ModelError(f"{url} is not valid YAML ({_yaml_problem(error)}); fix the file.") from None
        if not isinstance(loaded, dict):
            raise ModelError(f"{url} must be a YAML mapping of training parameters.")
        data = loaded
    source_prefix = run.model_prefix.strip("/")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str) and key.endswith("_BUCKET") and value == run.local_bucket:
            value = target.bucket
        elif isinstance(value, str) and (value == source_prefix or value.startswith(source_prefix + "/")):
            value = prefix + value[len(source_prefix) :]
        out[key] = value
    # These two point at custom_files/ during training; the uploaded model carries its own copies.
    out["MODEL_METADATA_FILE_S3_KEY"] = f"{prefix}/model/model_metadata.json"
    out["REWARD_FILE_S3_KEY"] = f"{prefix}/reward_function.py"
    out["SAGEMAKER_SHARED_S3_BUCKET"] = target.bucket
    out["SAGEMAKER_SHARED_S3_PREFIX"] = prefix
    out["METRICS_S3_BUCKET"] = target.bucket
    out["METRICS_S3_OBJECT_KEY"] = f"{prefix}/metrics/TrainingMetrics.json"
    return out


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one clause: the problem and where it is."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


_GENERATED_FROM = {
    "WORLD_NAME": ("DR_WORLD_NAME", "reInvent2019_track"),
    "RACE_TYPE": ("DR_RACE_TYPE", "TIME_TRIAL"),
    "BODY_SHELL_TYPE": ("DR_CAR_BODY_SHELL_TYPE", "deepracer"),
    "CAR_COLOR": ("DR_CAR_COLOR", "Red"),
    "CAR_NAME": ("DR_CAR_NAME", "FastCar"),
    "DISPLAY_NAME": ("DR_DISPLAY_NAME", "racer1"),
    "RACER_NAME": ("DR_RACER_NAME", "racer1"),
    "ALTERNATE_DRIVING_DIRECTION": ("DR_TRAIN_ALTERNATE_DRIVING_DIRECTION", "False"),
    "CHANGE_START_POSITION": ("DR_TRAIN_CHANGE_START_POSITION", "True"),
    "ENABLE_DOMAIN_RANDOMIZATION": ("DR_ENABLE_DOMAIN_RANDOMIZATION", "False"),
    "NUMBER_OF_OBSTACLES": ("DR_OA_NUMBER_OF_OBSTACLES", "6"),
}


def _generated_training_params(model: ModelInventory) -> dict[str, Any]:
    values = model.run.values
    data: dict[str, Any] = {"AWS_REGION": model.run.region}
    for key, (variable, default) in _GENERATED_FROM.items():
        data[key] = values.get(variable, default)
    if data["RACE_TYPE"] != "OBJECT_AVOIDANCE":
        del data["NUMBER_OF_OBSTACLES"]
    return data


def dump_training_params(data: Mapping[str, Any]) -> bytes:
    """DRfC's style: every value a quoted string, except real booleans (DRoA needs
    ``TRACK_DIRECTION_CLOCKWISE`` as a YAML boolean)."""
    plain = {k: v for k, v in data.items()}
    text = "".join(
        yaml.safe_dump({k: v}, default_style=None if isinstance(v, bool) else "'", sort_keys=False)
        for k, v in plain.items()
    )
    return text.encode()
