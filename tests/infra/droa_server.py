"""A local stand-in for a DeepRacer on AWS (DRoA) deployment, on real listeners on 127.0.0.1.

Three listeners, as DRoA has three front doors:

- the website: ``GET /env.js`` with ``window.EnvironmentConfig`` naming the Cognito pools (a moto server),
  the API and the upload bucket;
- the API (API Gateway with IAM auth): ``GET /models``, ``POST /importmodel``, ``GET /models/{id}``. Every
  request must be SigV4-signed for ``execute-api`` with the credentials the identity pool issued. The
  import runs DRoA's synchronous checks on the files in the bucket (``importModel.ts``: request fields,
  the four required files, car customisation, track and direction, object avoidance, SAC rules) and
  answers 400 with DRoA's messages; the asynchronous validation (checkpoint files of ``model/``) ends in
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

import http.client
import json
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
    metrics_key: str | None
    status: str = "IMPORTING"
    import_error: str | None = None
    polls: int = 0

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "modelId": self.model_id, "name": self.name, "status": self.status, "trainingStatus": "COMPLETED",
            "fileSizeInBytes": 0, "carCustomization": {"carShell": self.car[0], "carColor": self.car[1]},
            "trainingConfig": {"trackConfig": {"trackId": self.track[0], "trackDirection": self.track[1]}},
        }
        if self.description:
            data["description"] = self.description
        if self.import_error:
            data["importErrorMessage"] = self.import_error
        return data


class BadRequest(Exception):
    pass


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
    reject: dict[str, str] = field(default_factory=dict)  # model name -> a 400 from a rule the client lacks
    fail_validation: str | None = None  # the simapp validator's complaint about every model
    models: list[DroaModel] = field(default_factory=list)
    api_calls: list[tuple[str, str]] = field(default_factory=list)
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
                return Response.json(200, {"models": [m.describe() for m in self.models]})
            if request.method == "POST" and path == "/importmodel":
                try:
                    return Response.json(200, {"modelId": self.import_model(request.json())})
                except BadRequest as error:
                    return Response.json(400, {"message": str(error)})
                except FileNotFoundError as error:
                    return Response.json(500, {"message": str(error)})
            if request.method == "GET" and path.startswith("/models/"):
                model = next((m for m in self.models if m.model_id == path.removeprefix("/models/")), None)
                if model is None:
                    return Response.json(404, {"message": "Model not found."})
                self._poll(model)
                return Response.json(200, {"model": model.describe()})
            return Response.json(403, {"message": "Missing Authentication Token"})

    def _read(self, key: str) -> bytes | None:
        try:
            body: bytes = self.seaweed.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception:
            return None
        return body

    def _require(self, root: str, relative: str, what: str) -> bytes:
        body = self._read(f"{root}/{relative}")
        if body is None:
            raise FileNotFoundError(f"{what} not found at s3://{self.bucket}/{root}/{relative}")
        return body

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
        if name in self.reject:
            raise BadRequest(self.reject[name])
        if bucket != self.bucket:
            raise FileNotFoundError(f"Training params not found at s3://{bucket}/{path}/training_params.yaml")
        params = yaml.safe_load(self._require(path, "training_params.yaml", "Training params")) or {}
        metadata = json.loads(self._require(path, "model_metadata.json", "Model metadata"))
        self._require(path, "reward_function.py", "Reward function")
        hyper = json.loads(self._require(path, "ip/hyperparameters.json", "Hyperparameters"))
        car = self._car(params)
        if car[1] not in CAR_SHELLS[car[0]]:
            raise BadRequest(f"Invalid car customization. Car shell {car[0]} is not available in color {car[1]}.")
        track = self._track(params)
        if track[0] not in TRACKS or track[1] not in TRACKS[track[0]][0]:
            raise BadRequest(f"Invalid track configuration. Track {track[0]} is not available in direction {track[1]}.")
        if params.get("RACE_TYPE") == "OBJECT_AVOIDANCE":
            count = params.get("NUMBER_OF_OBSTACLES")
            if not count or float(count) > 6:
                raise BadRequest("Number of obstacle positions is invalid.")
        algorithm, space_type = metadata.get("training_algorithm"), metadata.get("action_space_type")
        if algorithm == "sac" and space_type == "discrete":
            raise BadRequest("Agent algorithm SAC does not work with discrete action space.")
        if algorithm == "sac" and hyper.get("num_episodes_between_training") != 1:
            raise BadRequest("Invalid hyperparameter number of episodes between training for SAC agent algorithm.")
        space = metadata.get("action_space")
        if space_type == "continuous" and isinstance(space, dict):
            if space["speed"]["low"] >= space["speed"]["high"]:
                raise BadRequest("Invalid action space speeds.")
            if space["steering_angle"]["low"] >= space["steering_angle"]["high"]:
                raise BadRequest("Invalid action space steering angles.")
        listing = self.seaweed.client().list_objects_v2(Bucket=bucket, Prefix=f"{path}/metrics/training/")
        keys = [o["Key"] for o in listing.get("Contents", [])]
        metrics = [k for k in keys if "training-" in k and k.endswith(".json")]
        model_id = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(15))
        self.models.append(DroaModel(model_id, name, description, bucket, path, params, car, track,
                                     metrics[0] if metrics else None))
        return model_id

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
        if model.status != "IMPORTING":
            return
        model.polls += 1
        if model.polls < self.polls_until_done:
            return
        problem = self._validate(model.s3_path)
        model.status = "ERROR" if problem else "READY"
        model.import_error = f"Model validation failed: {problem}" if problem else None

    def _validate(self, root: str) -> str | None:
        """The asynchronous model validation: what simapp's validator needs in ``model/``."""
        if self.fail_validation:
            return self.fail_validation
        for relative in ("model/model_metadata.json", "model/.coach_checkpoint", "model/deepracer_checkpoints.json"):
            if self._read(f"{root}/{relative}") is None:
                return f"{relative} is missing."
        index = json.loads(self._read(f"{root}/model/deepracer_checkpoints.json") or b"{}")
        for which in ("last_checkpoint", "best_checkpoint"):
            name = (index.get(which) or {}).get("name")
            if not name:
                return f"deepracer_checkpoints.json has no {which}."
            for suffix in CKPT_SUFFIXES:
                if self._read(f"{root}/model/{name}{suffix}") is None:
                    return f"checkpoint file {name}{suffix} is missing."
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
