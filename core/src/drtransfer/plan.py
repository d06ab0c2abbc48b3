"""Planning: the operations that put one model in the importable layout at its target. Pure.

Target keys (deepracer-domain §3.3 step 9, without DRfC's bugs)::

    model/N_Step-M.ckpt.data-00000-of-00001, .index, .meta   copies of the chosen checkpoint only
    model/model_N.pb                                           copy
    model/model_metadata.json                                  the bytes of the source's, as inspected
    reward_function.py                                         --reward-function, else the prefix root's, else
                                                               DR_LOCAL_S3_REWARD_KEY (not for -p): copy or put
    metrics/...                                                every object of the metrics prefix
    training_params.yaml                                       the source's (S3 fields rewritten), else what
                                                               DRfC's training writes, pointed at the target
    ip/hyperparameters.json                                    copy
    model/deepracer_checkpoints.json   (commit)                last = best = the chosen entry
    model/.coach_checkpoint            (commit)                the chosen checkpoint's name
    model_metadata.json                (commit)                the same bytes, at the root

Commit operations run only after every other operation of the model succeeded, so a half-finished
upload never looks importable.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Mapping
from typing import Any

import yaml

from drtransfer.checkpoints import CHECKPOINT_SUFFIXES, Selection
from drtransfer.errors import ModelError
from drtransfer.inventory import LocalFile, ModelInventory
from drtransfer.operations import CopyObject, DeleteObject, ModelPlan, ObjectLocation, PutBytes, SourceObject
from drtransfer.runconfig import RunConfig

# libyaml's parser when PyYAML has it (10x faster, the same safe constructors and so the same values)
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _target(root: ObjectLocation, relative: str) -> ObjectLocation:
    return ObjectLocation(root.endpoint, root.bucket, f"{root.key.rstrip('/')}/{relative}")


def checkpoint_index_bytes(selection: Selection) -> bytes:
    entry = selection.index_entry
    return json.dumps({"last_checkpoint": entry, "best_checkpoint": entry}).encode()


def plan_model(
    model: ModelInventory, selection: Selection, target: ObjectLocation, *, endpoint_url: str | None = None
) -> ModelPlan:
    """The plan for ``model`` with checkpoint ``selection`` at ``target`` (bucket + prefix, no slash);
    ``endpoint_url`` is what ``training_params.yaml`` names as the target's endpoint
    (:func:`training_endpoint_url`; None for AWS S3)."""
    run = model.run
    root = ObjectLocation(target.endpoint, target.bucket, target.key.strip("/") + "/")
    plan = ModelPlan(model_id=run.key, target_root=root, notes=[selection.explanation], node=run.node)

    def copy(source: SourceObject, relative: str, commit: bool = False) -> None:
        plan.add(CopyObject(source, _target(target, relative), commit=commit))

    ckpt = selection.checkpoint
    for suffix in CHECKPOINT_SUFFIXES:
        copy(ckpt.files[suffix], f"model/{ckpt.name}{suffix}")
    copy(ckpt.files["pb"], f"model/model_{ckpt.number}.pb")
    # The inspection read and checked the metadata: those bytes are put, not copied again (two GETs
    # fewer per model across endpoints, and what was checked is what is uploaded).
    plan.add(PutBytes(_target(target, "model/model_metadata.json"), model.metadata_body, "application/json"))
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
    params = training_params_for(model, target, endpoint_url=endpoint_url)
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
    plan.add(PutBytes(_target(target, "model_metadata.json"), model.metadata_body, "application/json", commit=True))
    return plan


def add_wipe(plan: ModelPlan, existing: Mapping[str, int], keep: Collection[str] = ()) -> None:
    """``-w``: delete every existing target object under the plan's root that the plan does not write
    and that is not in ``keep`` (the car packages drtransfer wrote there).

    ``existing`` maps target keys to sizes (a listing of exactly the target prefix); a key outside the
    root is refused, never deleted.
    """
    root = plan.target_root
    if not root.key.strip("/"):
        raise ModelError(f"Refusing to wipe s3://{root.bucket}/: the target prefix is empty.")
    kept = plan.target_keys() | set(keep)
    for key, size in sorted(existing.items()):
        if not key.startswith(root.key):
            raise ModelError(f"Refusing to delete s3://{root.bucket}/{key}: it is outside {root.url}.")
        if key not in kept:
            plan.add(DeleteObject(ObjectLocation(root.endpoint, root.bucket, key), size))


# ---- training_params.yaml -------------------------------------------------------------------------


def training_params_for(
    model: ModelInventory, target: ObjectLocation, *, endpoint_url: str | None = None
) -> dict[str, Any]:
    """The source's training params (``training_params_1.yaml`` preferred), else what DRfC's training
    writes for the run's ``DR_*`` values (:func:`drfc_training_params`), with every S3 field pointing at
    ``target``. ``S3_ENDPOINT_URL``, where present, becomes ``endpoint_url``, or goes when that is None
    (AWS S3 needs none)."""
    run = model.run
    prefix = target.key.strip("/")
    if model.training_params is None:
        data = drfc_training_params(run)
    else:
        url = f"s3://{model.training_params.location.bucket}/{model.training_params.location.key}"
        try:
            loaded = yaml.load(model.read(model.training_params), Loader=SAFE_LOADER)
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
    if "S3_ENDPOINT_URL" in out:
        if endpoint_url is None:
            del out["S3_ENDPOINT_URL"]
        else:
            out["S3_ENDPOINT_URL"] = endpoint_url
    return out


def training_endpoint_url(run: RunConfig) -> str | None:
    """The ``S3_ENDPOINT_URL`` for the run's target: the upload endpoint's URL (None for AWS S3). A target
    on the run's own store (``-L``) keeps the URL DRfC's containers reach that store at (``DR_MINIO_URL``,
    ``http://minio:9000`` for a local MinIO): they read the yaml, and the host's URL does not resolve there."""
    if run.upload is None:
        return None
    if run.upload.url is not None and run.upload.url == run.local.url:
        return _drfc_minio_url(run.values) or run.upload.url
    return run.upload.url


def _drfc_minio_url(values: Mapping[str, str]) -> str | None:
    """``DR_MINIO_URL`` as DRfC's activation sets it from ``DR_CLOUD`` (unset for aws)."""
    if "DR_MINIO_URL" in values:
        return values["DR_MINIO_URL"]
    cloud = values.get("DR_CLOUD", "").lower()
    if cloud in ("local", "azure"):
        return "http://minio:9000"
    if cloud == "remote":
        return values.get("DR_REMOTE_MINIO_URL", "")
    return None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one clause: the problem and where it is."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


# What DRfC's training (scripts/training/prepare-config.py) writes from the environment, key by key:
# (key, variables tried in order, default when none is set). Defaults keep the script's types (REVERSE_DIR
# False, NUM_WORKERS 1); set variables are strings, empty ones included.
_Table = tuple[tuple[str, tuple[str, ...], Any], ...]
_CAR_AND_TRAINING: _Table = (
    ("BODY_SHELL_TYPE", ("DR_CAR_BODY_SHELL_TYPE",), "deepracer"),
    ("CAR_COLOR", ("DR_CAR_COLOR",), "Red"),
    ("CAR_NAME", ("DR_CAR_NAME",), "MyCar"),
    ("RACE_TYPE", ("DR_RACE_TYPE",), "TIME_TRIAL"),
    ("WORLD_NAME", ("DR_WORLD_NAME",), "LGSWide"),
    ("DISPLAY_NAME", ("DR_DISPLAY_NAME",), "racer1"),
    ("RACER_NAME", ("DR_RACER_NAME",), "racer1"),
    ("REVERSE_DIR", ("DR_TRAIN_REVERSE_DIRECTION",), False),
    (
        "ALTERNATE_DRIVING_DIRECTION",
        ("DR_TRAIN_ALTERNATE_DRIVING_DIRECTION", "DR_ALTERNATE_DRIVING_DIRECTION"),
        "false",
    ),
    ("CHANGE_START_POSITION", ("DR_TRAIN_CHANGE_START_POSITION", "DR_CHANGE_START_POSITION"), "true"),
    ("ROUND_ROBIN_ADVANCE_DIST", ("DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST",), "0.05"),
    ("START_POSITION_OFFSET", ("DR_TRAIN_START_POSITION_OFFSET",), "0.00"),
    ("ENABLE_DOMAIN_RANDOMIZATION", ("DR_ENABLE_DOMAIN_RANDOMIZATION",), "false"),
    ("MIN_EVAL_TRIALS", ("DR_TRAIN_MIN_EVAL_TRIALS",), "5"),
    ("CAMERA_MAIN_ENABLE", ("DR_CAMERA_MAIN_ENABLE",), "True"),
    ("CAMERA_SUB_ENABLE", ("DR_CAMERA_SUB_ENABLE",), "True"),
    ("BEST_MODEL_METRIC", ("DR_TRAIN_BEST_MODEL_METRIC",), "progress"),
    ("ENABLE_EXTRA_KVS_OVERLAY", ("DR_ENABLE_EXTRA_KVS_OVERLAY",), "False"),
)
_OBJECT_AVOIDANCE: _Table = (
    ("NUMBER_OF_OBSTACLES", ("DR_OA_NUMBER_OF_OBSTACLES",), "6"),
    ("MIN_DISTANCE_BETWEEN_OBSTACLES", ("DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES",), "2.0"),
    ("RANDOMIZE_OBSTACLE_LOCATIONS", ("DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS",), "True"),
    ("IS_OBSTACLE_BOT_CAR", ("DR_OA_IS_OBSTACLE_BOT_CAR",), "false"),
    ("OBSTACLE_TYPE", ("DR_OA_OBSTACLE_TYPE",), "box_obstacle"),
)
_HEAD_TO_BOT: _Table = (
    ("IS_LANE_CHANGE", ("DR_H2B_IS_LANE_CHANGE",), "False"),
    ("LOWER_LANE_CHANGE_TIME", ("DR_H2B_LOWER_LANE_CHANGE_TIME",), "3.0"),
    ("UPPER_LANE_CHANGE_TIME", ("DR_H2B_UPPER_LANE_CHANGE_TIME",), "5.0"),
    ("LANE_CHANGE_DISTANCE", ("DR_H2B_LANE_CHANGE_DISTANCE",), "1.0"),
    ("NUMBER_OF_BOT_CARS", ("DR_H2B_NUMBER_OF_BOT_CARS",), "0"),
    ("MIN_DISTANCE_BETWEEN_BOT_CARS", ("DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS",), "2.0"),
    ("RANDOMIZE_BOT_CAR_LOCATIONS", ("DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS",), "False"),
    ("BOT_CAR_SPEED", ("DR_H2B_BOT_CAR_SPEED",), "0.2"),
    ("PENALTY_SECONDS", ("DR_H2B_BOT_CAR_PENALTY",), "2.0"),
)


def _from_env(values: Mapping[str, str], table: _Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, variables, default in table:
        out[key] = next((values[v] for v in variables if v in values), default)
    return out


def drfc_training_params(run: RunConfig) -> dict[str, Any]:
    """The single-config ``training_params.yaml`` DRfC's training writes for the run's variables, its
    S3 fields naming the run's own bucket, prefix and store as there."""
    values = run.values
    data: dict[str, Any] = {
        "AWS_REGION": run.region,
        "JOB_TYPE": "TRAINING",
        "KINESIS_VIDEO_STREAM_NAME": values.get("DR_KINESIS_STREAM_NAME", ""),
        "METRICS_S3_BUCKET": run.local_bucket,
    }
    minio_url = _drfc_minio_url(values)
    if minio_url is not None:
        data["S3_ENDPOINT_URL"] = minio_url
    metadata_key = values.get("DR_LOCAL_S3_MODEL_METADATA_KEY", "custom_files/model_metadata.json")
    data.update(
        {
            "METRICS_S3_OBJECT_KEY": f"{run.metrics_prefix}/TrainingMetrics.json",
            "MODEL_METADATA_FILE_S3_KEY": metadata_key,
            "REWARD_FILE_S3_KEY": run.reward_key,
            "ROBOMAKER_SIMULATION_JOB_ACCOUNT_ID": "Dummy",
            "NUM_WORKERS": values.get("DR_WORKERS", 1),
            "SAGEMAKER_SHARED_S3_BUCKET": run.local_bucket,
            "SAGEMAKER_SHARED_S3_PREFIX": run.model_prefix,
            "SIMTRACE_S3_BUCKET": run.local_bucket,
            "SIMTRACE_S3_PREFIX": run.model_prefix,
            "TRAINING_JOB_ARN": "arn:Dummy",
        }
    )
    data.update(_from_env(values, _CAR_AND_TRAINING))
    if data["RACE_TYPE"] == "OBJECT_AVOIDANCE":
        data.update(_from_env(values, _OBJECT_AVOIDANCE))
        positions = values.get("DR_OA_OBJECT_POSITIONS", "")
        if positions != "":
            data["OBJECT_POSITIONS"] = positions.split(";")
            data["NUMBER_OF_OBSTACLES"] = str(len(data["OBJECT_POSITIONS"]))
    if data["RACE_TYPE"] == "HEAD_TO_BOT":
        data.update(_from_env(values, _HEAD_TO_BOT))
    return data


def dump_training_params(data: Mapping[str, Any]) -> bytes:
    """DRfC's style: every value a quoted string, except real booleans (DRoA needs
    ``TRACK_DIRECTION_CLOCKWISE`` as a YAML boolean)."""
    # One dump per run of booleans or of other values (not one per key: the dumper's set-up costs as much
    # as a key); the text is the same, entry by entry.
    runs = itertools.groupby(data.items(), key=lambda item: isinstance(item[1], bool))
    style = {True: None, False: "'"}
    text = "".join(yaml.safe_dump(dict(items), default_style=style[flag], sort_keys=False) for flag, items in runs)
    return text.encode()
