"""The fake DRoA against the rules of DRoA's own code (v1.2.5): API Gateway's request validation, the
ImportModel handler's checks, what its database layer cannot store and what follows, and the import
workflow's texts. Requests are signed and sent here directly, without the client, so that the client's
tests against this fake say something about DRoA."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from tests.infra.droa_server import FakeDroa

CKPT = "3_Step-300.ckpt"
METADATA = {"action_space": [{"steering_angle": 0, "speed": 1}], "action_space_type": "discrete",
            "sensor": ["FRONT_FACING_CAMERA"], "training_algorithm": "clipped_ppo", "version": "5"}
PARAMS = {"WORLD_NAME": "reInvent2019_track", "RACE_TYPE": "TIME_TRIAL", "BODY_SHELL_TYPE": "deepracer",
          "CAR_COLOR": "Red", "TRACK_DIRECTION_CLOCKWISE": False}


def call(droa: FakeDroa, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    assert droa.issued is not None
    url = droa.api_url.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else b""
    signed = AWSRequest(method=method, url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(BotoCredentials(droa.issued.access_key, droa.issued.secret_key, droa.issued.session_token),
              "execute-api", droa.region).add_auth(signed)
    answer = requests.request(method, url, data=data or None, headers=dict(signed.headers.items()), timeout=30)
    return answer.status_code, answer.json()


def folder(droa: FakeDroa, params: dict[str, Any] | None = None, *, index: dict[str, Any] | None = None,
           checkpoint_files: bool = True, raw_params: str | None = None) -> str:
    """An import folder in DRoA's upload bucket; returns its s3Path."""
    path = f"uploads/models/{uuid.uuid4()}"
    text = raw_params if raw_params is not None else yaml.safe_dump({**PARAMS, **(params or {})})
    files: dict[str, bytes] = {
        "training_params.yaml": text.encode(),
        "model_metadata.json": json.dumps(METADATA).encode(),
        "reward_function.py": b"def reward_function(params):\n    return 1.0\n",
        "ip/hyperparameters.json": json.dumps({"num_episodes_between_training": 20}).encode(),
        "model/model_metadata.json": json.dumps(METADATA).encode(),
        "model/.coach_checkpoint": CKPT.encode(),
        "model/deepracer_checkpoints.json": json.dumps(
            index if index is not None else {"last_checkpoint": {"name": CKPT}, "best_checkpoint": {"name": CKPT}}
        ).encode(),
    }
    if checkpoint_files:
        files.update({f"model/{CKPT}{suffix}": b"x" for suffix in (".data-00000-of-00001", ".index", ".meta")})
    client = droa.seaweed.client()
    for relative, body in files.items():
        client.put_object(Bucket=droa.bucket, Key=f"{path}/{relative}", Body=body)
    return path


def import_(droa: FakeDroa, path: str, name: str = "good-model", **extra: str) -> tuple[int, Any]:
    return call(droa, "POST", "/importmodel", {"s3Bucket": droa.bucket, "s3Path": path, "modelName": name, **extra})


OA = {"RACE_TYPE": "OBJECT_AVOIDANCE", "RANDOMIZE_OBSTACLE_LOCATIONS": False}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # count = number of positions, compared strictly: a quoted count never equals one
        ({"NUMBER_OF_OBSTACLES": 3, "OBJECT_POSITIONS": ["0.2,1", "0.5,-1"]},
         "Obstacle positions must be equal to number of objects."),
        ({"NUMBER_OF_OBSTACLES": "2", "OBJECT_POSITIONS": ["0.2,1", "0.5,-1"]},
         "Obstacle positions must be equal to number of objects."),
        # the first no nearer the start than 0.07, the last no further than 0.9, sorted by position
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": ["0.5,1", "0.06,-1"]}, "First obstacle position is invalid."),
        ({"NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS": ["0.91,1", "0.5,-1"]}, "Last obstacle position is invalid."),
        # at least 0.13 between neighbours
        ({"NUMBER_OF_OBSTACLES": 3, "OBJECT_POSITIONS": ["0.2,1", "0.7,1", "0.32,-1"]},
         "Obstacle position distances are invalid."),
    ],
    ids=["count-vs-positions", "quoted-count", "first", "last", "spacing"],
)
def test_the_obstacle_rules_answer_400_with_droas_sentence(droa: FakeDroa, values: dict[str, Any],
                                                           message: str) -> None:
    assert import_(droa, folder(droa, {**OA, **values})) == (400, {"message": message})
    assert droa.models == []
    assert call(droa, "GET", "/models") == (200, {"models": []})


@pytest.mark.parametrize(
    "values",
    [
        {"NUMBER_OF_OBSTACLES": "3.0", "RANDOMIZE_OBSTACLE_LOCATIONS": True},
        {"NUMBER_OF_OBSTACLES": 1, "OBJECT_POSITIONS": ["0.30"]},
    ],
    ids=["string-count", "position-without-lane"],
)
def test_what_its_database_cannot_store_is_a_bare_500_that_breaks_the_listing(droa: FakeDroa,
                                                                              values: dict[str, Any]) -> None:
    assert import_(droa, folder(droa, {**OA, **values})) == (500, {})
    [broken] = droa.models  # the model record was written, its training record was not
    assert broken.status == "IMPORTING" and not broken.training
    assert call(droa, "GET", "/models") == (500, {"message": "Training item not found."})
    assert call(droa, "GET", f"/models/{broken.model_id}") == (404, {"message": "Item not found."})
    # Every later import of that user still goes through the handler, but the listing stays broken.
    assert import_(droa, folder(droa), name="next-model")[0] == 200
    assert call(droa, "GET", "/models") == (500, {"message": "Training item not found."})


def test_a_count_droa_can_store_is_recorded_as_a_number(droa: FakeDroa) -> None:
    status, answer = import_(droa, folder(droa, {**OA, "NUMBER_OF_OBSTACLES": 2, "OBJECT_POSITIONS":
                                                 ["0.5, -1", "0.2,1"]}))
    assert status == 200
    [model] = call(droa, "GET", "/models")[1]["models"]
    assert model["modelId"] == answer["modelId"]
    assert model["trainingConfig"]["raceType"] == "OBJECT_AVOIDANCE"
    assert model["trainingConfig"]["objectAvoidanceConfig"] == {
        "numberOfObjects": 2,
        "objectPositions": [{"trackPercentage": 0.2, "laneNumber": 1}, {"trackPercentage": 0.5, "laneNumber": -1}],
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"modelName": "alpha_v2"},
         'Invalid request body: [ECMA 262 regex "^[a-zA-Z0-9-]+$" does not match input string "alpha_v2"]'),
        ({"modelName": "m" * 65},
         f'Invalid request body: [string "{"m" * 65}" is too long (length: 65, maximum allowed: 64)]'),
        ({"modelDescription": "no_underscores"},
         'Invalid request body: [ECMA 262 regex "^[a-zA-Z0-9- ]+$" does not match input string "no_underscores"]'),
        ({"modelName": None}, 'Invalid request body: [object has missing required properties (["modelName"])]'),
    ],
    ids=["name-pattern", "name-length", "description-pattern", "name-missing"],
)
def test_the_gateway_answers_request_validation_failures_with_error_message(
    droa: FakeDroa, body: dict[str, Any], error: str
) -> None:
    request = {"s3Bucket": droa.bucket, "s3Path": "uploads/models/x", "modelName": "good-model", **body}
    request = {k: v for k, v in request.items() if v is not None}
    assert call(droa, "POST", "/importmodel", request) == (400, {"errorMessage": error})
    assert ("POST", "/importmodel") not in droa.handled  # the handler never saw it


def test_the_handler_answers_what_the_gateway_lets_through(droa: FakeDroa) -> None:
    assert call(droa, "POST", "/importmodel", {"s3Bucket": "", "s3Path": "p", "modelName": "m"}) == (
        400, {"message": "Missing required fields"})
    assert call(droa, "GET", "/models/abcdefghijklmno") == (404, {"message": "Item not found."})
    path = folder(droa)
    droa.seaweed.client().delete_object(Bucket=droa.bucket, Key=f"{path}/reward_function.py")
    assert import_(droa, path) == (500, {})  # a missing file is an unmodelled error
    assert import_(droa, folder(droa, raw_params="WORLD_NAME: [unclosed\n")) == (500, {})
    assert droa.models == []


def test_the_reward_function_is_validated_on_the_track_and_direction_droa_recorded(droa: FakeDroa) -> None:
    droa.polls_until_done = 1
    droa.reward_errors = ["Unknown parameter 'speeed'", "Reward must be a float"]
    status, answer = import_(droa, folder(droa, {"WORLD_NAME": "2022_april_open", "TRACK_DIRECTION_CLOCKWISE": True}))
    assert status == 200
    [model] = droa.models
    assert model.track == ("2022_april_open", "CLOCKWISE") and model.track_name == "2022_april_open_cw"
    status, got = call(droa, "GET", f"/models/{answer['modelId']}")
    assert (got["model"]["status"], got["model"]["importErrorMessage"]) == (
        "ERROR", "Reward Function Validation Unknown parameter 'speeed', Reward must be a float")


def test_model_validation_needs_the_last_checkpoint_and_not_the_best(droa: FakeDroa) -> None:
    droa.polls_until_done = 1
    no_best = import_(droa, folder(droa, index={"last_checkpoint": {"name": CKPT}}), name="no-best")[1]["modelId"]
    missing = import_(droa, folder(droa, checkpoint_files=False), name="no-files")[1]["modelId"]
    assert call(droa, "GET", f"/models/{no_best}")[1]["model"]["status"] == "READY"
    got = call(droa, "GET", f"/models/{missing}")[1]["model"]
    assert (got["status"], got["importErrorMessage"]) == ("ERROR", "Model validation failed: No checkpoint files")
