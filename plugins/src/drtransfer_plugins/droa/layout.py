"""The tree DRoA imports, planned straight from the local bucket into
``s3://<uploadBucketName>/uploads/models/<uuid>/`` (deepracer-domain §6.1-§6.2)::

    model_metadata.json  reward_function.py  training_params.yaml  hyperparameters.json
    ip/hyperparameters.json
    model/{model_metadata.json, deepracer_checkpoints.json, .coach_checkpoint, N_Step-M.ckpt.*, model_N.pb}
    metrics/...                              the run's metrics, as uploaded anywhere else
    metrics/training/training-metrics.json   the training graph, where DRoA's import looks for it

It is core's importable layout (:func:`drtransfer.plan.plan_model`, one checkpoint, index files last)
with DRoA's additions: the normalised ``training_params.yaml``, the root ``hyperparameters.json`` the web
UI asks for, and the training metrics under ``metrics/training/`` (DRoA ignores ``TrainingMetrics.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drtransfer.checkpoints import Selection
from drtransfer.errors import ModelError
from drtransfer.inventory import ModelInventory
from drtransfer.operations import CopyObject, ModelPlan, ObjectLocation, PutBytes
from drtransfer.plan import dump_training_params, plan_model, training_params_for
from drtransfer_plugins.droa.checks import normalise_training_params

UPLOAD_ROOT = "uploads/models"
TRAINING_METRICS = "metrics/training/training-metrics.json"
_EXCLUDED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "._.DS_Store"}  # the web UI's exclusions


@dataclass
class DroaLayout:
    """One model's planned import folder and what DRoA will read from it."""

    plan: ModelPlan
    s3_path: str  # uploads/models/<uuid>, what POST /importmodel names
    training_params: dict[str, Any]
    hyperparameters: dict[str, Any]


def _excluded(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name in _EXCLUDED_NAMES or name.endswith((".gz", ".zip"))


def plan_droa(model: ModelInventory, selection: Selection, endpoint: str, bucket: str, upload_id: str) -> DroaLayout:
    """The plan of one model into DRoA's upload bucket (pure, apart from reading small source files)."""
    s3_path = f"{UPLOAD_ROOT}/{upload_id}"
    target = ObjectLocation(endpoint, bucket, s3_path)
    plan = plan_model(model, selection, target)
    plan.fresh_target = True  # a new uuid prefix in a bucket DRoA's users may write but not read or list
    plan.operations = [op for op in plan.operations if not _excluded(op.target.key)]

    def at(relative: str) -> ObjectLocation:
        return ObjectLocation(endpoint, bucket, f"{s3_path}/{relative}")

    params = normalise_training_params(training_params_for(model, target), model.run)
    plan.drop(at("training_params.yaml").key)
    plan.add(PutBytes(at("training_params.yaml"), dump_training_params(params), "application/x-yaml"))
    plan.add(CopyObject(model.hyperparameters, at("hyperparameters.json")))
    training = [m for m in model.metrics if m.location.key.rsplit("/", 1)[-1] == "TrainingMetrics.json"]
    if training:
        plan.add(CopyObject(training[0], at(TRAINING_METRICS)))
    url = model.url("ip/hyperparameters.json")
    try:
        hyperparameters = json.loads(model.read(model.hyperparameters))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{url} is not valid JSON ({error}).") from None
    if not isinstance(hyperparameters, dict):
        raise ModelError(f"{url} must hold a JSON object.")
    return DroaLayout(plan, s3_path, params, hyperparameters)
