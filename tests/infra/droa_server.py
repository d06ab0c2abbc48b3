"""A local stand-in for a DeepRacer on AWS (DRoA) deployment, on real listeners on 127.0.0.1.

Three listeners, as DRoA has three front doors:

- the website: ``GET /env.js`` with ``window.EnvironmentConfig`` naming the Cognito pools (a moto server),
  the API and the upload bucket;
- the API (API Gateway with IAM auth): ``GET /models``, ``POST /importmodel``, ``GET /models/{id}``. Every
  request must be SigV4-signed for ``execute-api`` with the credentials the identity pool issued.
  The gateway's request validation answers a body outside the Smithy model with 400
  ``{"errorMessage": ...}``. The import handler reads the four required files and runs DRoA's checks
  (``importModel.ts``, ``validation.ts``, ``ImportHelper.ts``) with JavaScript's comparisons, answering
  400 ``{"message": ...}``; then it stores the model and training records as its database layer does:
  a value that layer cannot store (an obstacle count that is not a number, a position without a lane)
  leaves the model record without its training record and answers 500 ``{}``, as does any other
  unmodelled error; from then on ``GET /models`` answers 500 "Training item not found.". The
  asynchronous workflow (reward-function validation, then the model validator's checkpoint) ends in
  READY or ERROR with ``importErrorMessage`` after ``polls_until_done`` polls;
- the upload bucket: an S3 front that accepts only what DRoA's Cognito role may do (``PutObject`` and
  the multipart calls on ``uploadBucket/*``: no reads, no listings), signed with the issued credentials
  including their session token, and forwards the allowed requests to the real SeaweedFS bucket.
  SeaweedFS itself cannot take the identity pool's session token (it treats any token as one of its own
  STS sessions), hence the front.

The checks here are written from DRoA's sources independently of the plugin's, so a mistake in one is
caught by the other.
"""

from __future__ import annotations

import functools
import http.client
import itertools
import json
import math
import re
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from drtransfer.locals3 import SeaweedServer
from drtransfer_plugins.droa.catalog import CAR_COLORS, CAR_SHELLS, TRACKS
from tests.infra.fakehttp import FakeServer, Request, Response
from tests.infra.sigv4 import Secret, SignatureError, verify

NAME = re.compile(r"^[a-zA-Z0-9-]+$")
DESCRIPTION = re.compile(r"^[a-zA-Z0-9- ]+$")
CKPT_SUFFIXES = (".data-00000-of-00001", ".index", ".meta")
# The Smithy constraints of ImportModel's input, as the gateway's request validator applies them.
REQUIRED = ("modelName", "s3Bucket", "s3Path")
STRINGS = {"s3Bucket": None, "s3Path": None, "modelName": (1, 64, NAME), "modelDescription": (1, 255, DESCRIPTION)}
_JS_DECIMAL = r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"


# ---- JavaScript's conversions, as the handler applies them to YAML values --------------------------


def js_number(value: Any) -> float:
    """``Number(value)`` (what ``>`` compares) for the values YAML gives."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        if re.fullmatch(_JS_DECIMAL, text):
            return float(text.replace("Infinity", "inf"))
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            return float(int(text, 16))
    return math.nan


def js_truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def parse_float(text: str | None) -> float:
    """``parseFloat``: the longest decimal prefix, else NaN."""
    found = re.match(_JS_DECIMAL, (text or "").lstrip()) if text is not None else None
    return float(found.group(0).replace("Infinity", "inf")) if found else math.nan


def parse_int(text: str | None) -> float:
    """``parseInt(text, 10)``: the leading integer, else NaN (an absent lane is ``undefined``: NaN)."""
    found = re.match(r"[+-]?\d+", text.lstrip()) if text is not None else None
    return float(int(found.group(0))) if found else math.nan


def is_number(value: Any) -> bool:
    """What the database layer stores as a number: a JavaScript number that DynamoDB accepts."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "null")


def gateway_problems(body: Any) -> list[str]:
    """The request validator's findings for an ImportModel body, in its wording."""
    if not isinstance(body, dict):
        return [f'instance type ({json_type(body)}) does not match any allowed primitive type (allowed: ["object"])']
    problems = []
    missing = sorted(key for key in REQUIRED if key not in body)
    if missing:
        problems.append(f"object has missing required properties ({json.dumps(missing, separators=(',', ':'))})")
    for key, limits in STRINGS.items():
        if key not in body:
            continue
        value = body[key]
        if not isinstance(value, str):
            problems.append(f'instance type ({json_type(value)}) does not match any allowed primitive type '
                            f'(allowed: ["string"])')
            continue
        if limits is None:
            continue
        low, high, pattern = limits
        shown = json.dumps(value)
        if len(value) > high:
            problems.append(f"string {shown} is too long (length: {len(value)}, maximum allowed: {high})")
        if len(value) < low:
            problems.append(f"string {shown} is too short (length: {len(value)}, required minimum: {low})")
        if not pattern.search(value):
            problems.append(f"ECMA 262 regex {json.dumps(pattern.pattern)} does not match input string {shown}")
    return problems




@dataclass
class DroaModel:
    model_id: str
    name: str
    description: str | None
    s3_bucket: str
    s3_path: str
    training_params: dict[str, Any]
    car: tuple[str, str]
    track: tuple[str, str]
    track_name: str  # the route the reward function is validated on (getTrackNameForValidation)
    race_type: str
    object_avoidance: dict[str, Any] | None
    metrics_key: str | None
    training: bool = True  # False: the training record could not be stored
    status: str = "IMPORTING"
    import_error: str | None = None
    polls: int = 0

    def describe(self) -> dict[str, Any]:
        config: dict[str, Any] = {"raceType": self.race_type,
                                  "trackConfig": {"trackId": self.track[0], "trackDirection": self.track[1]}}
        if self.object_avoidance is not None:
            config["objectAvoidanceConfig"] = self.object_avoidance
        data: dict[str, Any] = {
            "modelId": self.model_id, "name": self.name, "status": self.status, "trainingStatus": "COMPLETED",
            "fileSizeInBytes": 0, "carCustomization": {"carShell": self.car[0], "carColor": self.car[1]},
            "trainingConfig": config,
        }
        if self.description:
            data["description"] = self.description
        if self.import_error:
            data["importErrorMessage"] = self.import_error
        return data


class BadRequest(Exception):
    """BadRequestError: 400 with DRoA's message."""


class Unmodelled(Exception):
    """Any other error in a handler: the server SDK answers 500 ``{}``."""


@dataclass
class FakeDroa:
    seaweed: SeaweedServer
    bucket: str
    cognito_url: str
    user_pool_id: str
    user_pool_client_id: str
    identity_pool_id: str
    region: str = "us-east-1"
    issued: Secret | None = None  # what the identity pool hands out; set by the fixture after asking moto
    polls_until_done: int = 2
    # model name -> a 400 from a check the client lacks (e.g. a DRoA release with another track list)
    reject: dict[str, str] = field(default_factory=dict)
    internal_error: bool = False  # every import fails unmodelled, as on a DynamoDB or Lambda failure
    reward_errors: list[str] = field(default_factory=list)  # the reward-function validator's findings
    fail_validation: str | None = None  # the simapp validator's complaint about every model
    models: list[DroaModel] = field(default_factory=list)
    api_calls: list[tuple[str, str]] = field(default_factory=list)
    handled: list[tuple[str, str]] = field(default_factory=list)  # the calls the gateway passed on
    s3_calls: list[tuple[str, str, int]] = field(default_factory=list)  # method, target, status
    lock: threading.Lock = field(default_factory=threading.Lock)
    site: FakeServer | None = None
    api: FakeServer | None = None
    s3: FakeServer | None = None

    def start(self) -> FakeDroa:
        self.site = FakeServer(self.handle_site)
        self.api = FakeServer(self.handle_api)
        self.s3 = FakeServer(self.handle_s3)
        return self

    def stop(self) -> None:
        for server in (self.site, self.api, self.s3):
            if server is not None:
                server.stop()

    @property
    def url(self) -> str:
        assert self.site is not None
        return self.site.url

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url + "/prod/"

    @property
    def s3_url(self) -> str:
        assert self.s3 is not None
        return self.s3.url

    # ---- website ----

    def handle_site(self, request: Request) -> Response:
        if request.method != "GET" or request.path != "/env.js":
            return Response(404, b"not found")
        config = {
            "apiEndpointUrl": self.api_url, "userPoolId": self.user_pool_id,
            "userPoolClientId": self.user_pool_client_id, "identityPoolId": self.identity_pool_id,
            "region": self.region, "uploadBucketName": self.bucket, "iotEndpoint": "", "solutionVersion": "v1.2.5",
            "namespace": "test",
        }
        return Response(200, f"window.EnvironmentConfig = {json.dumps(config)};".encode(),
                        {"Content-Type": "application/javascript"})

    # ---- API ----

    def _authenticate(self, request: Request, service: str, s3: bool = False) -> str | None:
        if self.issued is None:
            return "no credentials were issued yet"
        try:
            verify(method=request.method, raw_path=request.raw_path, headers=request.headers, body=request.body,
                   secret=self.issued, service=service, region=self.region, s3=s3)
        except SignatureError as problem:
            return str(problem)
        return None

    def handle_api(self, request: Request) -> Response:
        problem = self._authenticate(request, "execute-api")
        path = request.path.removeprefix("/prod")
        with self.lock:
            self.api_calls.append((request.method, path))
            if problem:
                return Response.json(403, {"message": problem})
            if request.method == "GET" and path == "/models":
                self.handled.append((request.method, path))
                if any(not m.training for m in self.models):
                    return Response.json(500, {"message": "Training item not found."})
                return Response.json(200, {"models": [m.describe() for m in self.models]})
            if request.method == "POST" and path == "/importmodel":
                return self._import(request)
            if request.method == "GET" and path.startswith("/models/"):
                self.handled.append((request.method, path))
                model_id = path.removeprefix("/models/")
                model = next((m for m in self.models if m.model_id == model_id and m.training), None)
                if model is None:
                    return Response.json(404, {"message": "Item not found."})
                self._poll(model)
                return Response.json(200, {"model": model.describe()})
            return Response.json(403, {"message": "Missing Authentication Token"})

    def _import(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        problems = gateway_problems(body)
        if problems:
            return Response.json(400, {"errorMessage": f"Invalid request body: [{', '.join(problems)}]"})
        self.handled.append((request.method, "/importmodel"))
        try:
            return Response.json(200, {"modelId": self.import_model(body)})
        except BadRequest as error:
            return Response.json(400, {"message": str(error)})
        except Unmodelled:
            return Response.json(500, {})

    def _read(self, key: str) -> bytes | None:
        try:
            body: bytes = self.seaweed.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception:
            return None
        return body

    def _require(self, bucket: str, root: str, relative: str) -> bytes:
        body = self._read(f"{root}/{relative}") if bucket == self.bucket else None
        if body is None:
            raise Unmodelled(f"{relative} not found at s3://{bucket}/{root}/{relative}")
        return body

    def _files(self, bucket: str, path: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """parseImportedFiles: the YAML and the two JSON files (any failure is unmodelled)."""
        try:
            params = yaml.safe_load(self._require(bucket, path, "training_params.yaml"))
            metadata = json.loads(self._require(bucket, path, "model_metadata.json"))
            self._require(bucket, path, "reward_function.py")
            hyper = json.loads(self._require(bucket, path, "ip/hyperparameters.json"))
        except (yaml.YAMLError, ValueError) as error:
            raise Unmodelled(str(error)) from None
        return params if isinstance(params, dict) else {}, metadata, hyper

    def import_model(self, body: dict[str, Any]) -> str:
        name, bucket, path = body.get("modelName"), body.get("s3Bucket"), body.get("s3Path")
        description = body.get("modelDescription")
        if not name or not bucket or not path:
            raise BadRequest("Missing required fields")
        if not NAME.match(name) or len(name) > 64:
            raise BadRequest("Model name must contain only alphanumeric characters and hyphens; and must be less "
                             "than or equal to 64 characters in length")
        if description and (not DESCRIPTION.match(description) or len(description) > 255):
            raise BadRequest("Model description must contain only alphanumeric characters, spaces, and hyphen; and "
                             "must be less than or equal to 255 characters in length")
        if self.internal_error:
            raise Unmodelled("internal error")
        params, metadata, hyper = self._files(bucket, path)
        car = self._car(params)
        if car[1] not in CAR_SHELLS[car[0]]:
            raise BadRequest(f"Invalid car customization. Car shell {car[0]} is not available in color {car[1]}.")
        track = self._track(params)
        if track[0] not in TRACKS or track[1] not in TRACKS[track[0]][0]:
            raise BadRequest(f"Invalid track configuration. Track {track[0]} is not available in direction {track[1]}.")
        single = len(TRACKS[track[0]][0]) == 1
        track_name = track[0] if single else track[0] + ("_cw" if track[1] == "CLOCKWISE" else "_ccw")
        race_type = "OBJECT_AVOIDANCE" if params.get("RACE_TYPE") == "OBJECT_AVOIDANCE" else "TIME_TRIAL"
        object_avoidance = None
        if race_type == "OBJECT_AVOIDANCE":
            object_avoidance = self._object_avoidance(params)
            self._check_object_avoidance(object_avoidance)
        if name in self.reject:
            raise BadRequest(self.reject[name])
        self._check_algorithm(metadata, hyper)
        listing = self.seaweed.client().list_objects_v2(Bucket=bucket, Prefix=f"{path}/metrics/training/")
        keys = [o["Key"] for o in listing.get("Contents", [])]
        metrics = [k for k in keys if "training-" in k and k.endswith(".json")]
        model_id = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(15))
        model = DroaModel(model_id, name, description, bucket, path, params, car, track, track_name, race_type,
                          object_avoidance, metrics[0] if metrics else None)
        # The model and training records are written side by side; only the training record has typed fields.
        model.training = object_avoidance is None or self._storable(object_avoidance)
        self.models.append(model)
        if not model.training:
            raise Unmodelled("the training record could not be stored")
        return model_id

    @staticmethod
    def _object_avoidance(params: dict[str, Any]) -> dict[str, Any]:
        """parseObjectAvoidanceConfig: the count as given, the positions split and parsed when DRoA uses them."""
        config: dict[str, Any] = {"numberOfObjects": params.get("NUMBER_OF_OBSTACLES")}
        positions = params.get("OBJECT_POSITIONS")
        given = isinstance(positions, list | str) and len(positions) > 0
        if given and params.get("RANDOMIZE_OBSTACLE_LOCATIONS") is not True:
            if not isinstance(positions, list) or not all(isinstance(entry, str) for entry in positions):
                raise Unmodelled("OBJECT_POSITIONS.map / positionStr.split is not a function")
            parsed = []
            for entry in positions:
                parts = [part.strip() for part in entry.split(",")]
                parsed.append({"trackPercentage": parse_float(parts[0]),
                               "laneNumber": parse_int(parts[1] if len(parts) > 1 else None)})
            config["objectPositions"] = parsed
        return config

    @staticmethod
    def _check_object_avoidance(config: dict[str, Any]) -> None:
        """validateObjectAvoidanceConfig, with JavaScript's falsiness, ``>`` and ``!==``."""
        count, positions = config["numberOfObjects"], config.get("objectPositions")
        if not js_truthy(count) or js_number(count) > 6:
            raise BadRequest("Number of obstacle positions is invalid.")
        if positions and not (is_number(count) and count == len(positions)):
            raise BadRequest("Obstacle positions must be equal to number of objects.")
        if not positions:
            return

        def compare(a: dict[str, float], b: dict[str, float]) -> int:
            difference = a["trackPercentage"] - b["trackPercentage"]
            return 0 if math.isnan(difference) else (difference > 0) - (difference < 0)

        positions.sort(key=functools.cmp_to_key(compare))
        if positions[0]["trackPercentage"] < 0.07:
            raise BadRequest("First obstacle position is invalid.")
        if positions[-1]["trackPercentage"] > 0.9:
            raise BadRequest("Last obstacle position is invalid.")
        for a, b in itertools.pairwise(positions):
            if b["trackPercentage"] - a["trackPercentage"] < 0.13:
                raise BadRequest("Obstacle position distances are invalid.")

    @staticmethod
    def _storable(config: dict[str, Any]) -> bool:
        """The training record's typed fields: numberOfObjects, trackPercentage and laneNumber are numbers."""
        positions = config.get("objectPositions") or []
        return is_number(config["numberOfObjects"]) and all(
            is_number(p["trackPercentage"]) and is_number(p["laneNumber"]) for p in positions)

    @staticmethod
    def _check_algorithm(metadata: dict[str, Any], hyper: dict[str, Any]) -> None:
        algorithm, space_type = metadata.get("training_algorithm"), metadata.get("action_space_type")
        if algorithm == "sac" and space_type == "discrete":
            raise BadRequest("Agent algorithm SAC does not work with discrete action space.")
        episodes = hyper.get("num_episodes_between_training")
        if algorithm == "sac" and not (is_number(episodes) and episodes == 1):
            raise BadRequest("Invalid hyperparameter number of episodes between training for SAC agent algorithm.")
        space = metadata.get("action_space")
        if isinstance(space, list):
            return
        if not isinstance(space, dict) or not isinstance(space.get("speed"), dict) \
                or not isinstance(space.get("steering_angle"), dict):
            raise Unmodelled("Cannot read properties of undefined")
        if space_type == "continuous":
            speed, steering = space["speed"], space["steering_angle"]
            if js_number(speed.get("low")) >= js_number(speed.get("high")):
                raise BadRequest("Invalid action space speeds.")
            if js_number(steering.get("low")) >= js_number(steering.get("high")):
                raise BadRequest("Invalid action space steering angles.")

    @staticmethod
    def _car(params: dict[str, Any]) -> tuple[str, str]:
        shell = params.get("BODY_SHELL_TYPE")
        if shell == "deepracer":
            color = str(params.get("CAR_COLOR") or "").upper()
            return "DEEPRACER", color if color in CAR_COLORS else "WHITE"
        for name, colors in CAR_SHELLS.items():
            for color, simapp in colors.items():
                if shell and simapp == shell:
                    return name, color
        return "DEEPRACER", "WHITE"

    @staticmethod
    def _track(params: dict[str, Any]) -> tuple[str, str]:
        track_id = str(params.get("WORLD_NAME"))
        known = TRACKS.get(track_id)
        if known and len(known[0]) == 1:
            return track_id, known[1]
        return track_id, "CLOCKWISE" if params.get("TRACK_DIRECTION_CLOCKWISE") is True else "COUNTER_CLOCKWISE"

    def _poll(self, model: DroaModel) -> None:
        """The workflow: reward-function validation, then model validation, then the completion's message."""
        if model.status != "IMPORTING":
            return
        model.polls += 1
        if model.polls < self.polls_until_done:
            return
        if self.reward_errors:
            model.status, model.import_error = "ERROR", f"Reward Function Validation {', '.join(self.reward_errors)}"
            return
        problem = self._validate(model.s3_path)
        model.status = "ERROR" if problem else "READY"
        model.import_error = f"Model validation failed: {problem}" if problem else None

    def _validate(self, root: str) -> str | None:
        """simapp's validation worker: the model metadata, then the last checkpoint (named by
        ``deepracer_checkpoints.json``, else ``.coach_checkpoint``); the best one only when it exists."""
        if self.fail_validation:
            return self.fail_validation
        try:
            json.loads(self._read(f"{root}/model/model_metadata.json") or b"")
        except ValueError as error:
            return f"Failed to parse model_metadata file: {error}"
        try:
            index = json.loads(self._read(f"{root}/model/deepracer_checkpoints.json") or b"{}")
        except ValueError:
            index = {}
        last = (index.get("last_checkpoint") or {}).get("name") if isinstance(index, dict) else None
        last = last or (self._read(f"{root}/model/.coach_checkpoint") or b"").decode().strip()
        if not last or any(self._read(f"{root}/model/{last}{suffix}") is None for suffix in CKPT_SUFFIXES):
            return "No checkpoint files"
        return None

    # ---- upload bucket ----

    def handle_s3(self, request: Request) -> Response:
        problem = self._authenticate(request, "s3", s3=True)
        allowed = problem is None and self._allowed(request)
        with self.lock:
            self.s3_calls.append((request.method, request.raw_path, 200 if allowed else 403))
        if not allowed:
            body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
                    f"<Message>{problem or 'Access Denied'}</Message></Error>").encode()
            return Response(403, body, {"Content-Type": "application/xml"})
        return self._forward(request)

    def _allowed(self, request: Request) -> bool:
        """DRoA's Cognito role: PutObject, PutObjectAcl and the multipart calls on uploadBucket/* only."""
        parts = request.path.lstrip("/").split("/", 1)
        if len(parts) != 2 or parts[0] != self.bucket or not parts[1]:
            return False  # bucket-level calls (listings, ListMultipartUploads) are outside uploadBucket/*
        query = parse_qs(request.query, keep_blank_values=True)
        if request.method == "PUT":
            return "x-amz-copy-source" not in {k.lower() for k in request.headers}  # a copy would read
        if request.method == "POST":
            return "uploads" in query or "uploadId" in query
        if request.method in ("GET", "DELETE"):
            return "uploadId" in query  # ListParts, AbortMultipartUpload
        return False  # HEAD and GET of objects: no s3:GetObject

    def _forward(self, request: Request) -> Response:
        target = urlsplit(self.seaweed.url)
        keep = {k: v for k, v in request.headers.items()
                if k.lower() in ("content-type", "content-md5", "content-encoding")
                or (k.lower().startswith("x-amz-") and k.lower() not in
                    ("x-amz-date", "x-amz-security-token", "x-amz-content-sha256"))}
        outgoing = AWSRequest(method=request.method, url=f"{self.seaweed.url}{request.raw_path}",
                              data=request.body, headers=keep)
        S3SigV4Auth(BotoCredentials(self.seaweed.access_key, self.seaweed.secret_key), "s3",
                    self.seaweed.region).add_auth(outgoing)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
        try:
            connection.request(request.method, request.raw_path, body=request.body,
                               headers=dict(outgoing.headers.items()))
            answer = connection.getresponse()
            body = answer.read()
            headers = {k: v for k, v in answer.getheaders()
                       if k.lower() in ("etag", "content-type", "x-amz-request-id") or k.lower().startswith("x-amz-")}
            return Response(answer.status, body, headers)
        finally:
            connection.close()
