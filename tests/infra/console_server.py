"""A local stand-in for the AWS DeepRacer console's ``deepracer`` service (JSON 1.1 protocol).

It answers ``X-Amz-Target: AwsSilverstoneCloudService.ImportModel / .ListModels / .GetModel`` on a real
listener on 127.0.0.1, accepts only requests signed (SigV4, service ``deepracer``, us-east-1) with the
credentials it was given, checks the request shapes of deepracer-utils' service definition, pages
``ListModels`` with ``NextToken``, refuses a duplicate name, and imports asynchronously: a model is
IMPORTING until it has been polled ``polls_until_done`` times, then READY when the imported prefix holds
an importable model (read from the real S3 server), else IMPORT_ERROR with the reason.

Not known from any source, so chosen here: the duplicate-name error (``ConflictException``) and the
IMPORT_ERROR wording.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.infra.fakehttp import FakeServer, Request, Response
from tests.infra.sigv4 import Secret, SignatureError, verify

TARGET_PREFIX = "AwsSilverstoneCloudService."
CONTENT_TYPE = "application/x-amz-json-1.1"
NAME = re.compile(r"^[a-zA-Z0-9\-]+$")
ROLE = re.compile(r"arn:aws(-iso)?:iam::[0-9]{12}:role/(service-role/)?[a-zA-Z0-9_+=,.\-@]{1,64}")
ACCOUNT = "123456789012"
REQUIRED_FILES = (
    "model/model_metadata.json",
    "model/deepracer_checkpoints.json",
    "model/.coach_checkpoint",
    "reward_function.py",
    "training_params.yaml",
    "ip/hyperparameters.json",
    "model_metadata.json",
)

# (bucket, key) -> bytes or None: how the fake reads the imported prefix from the real S3 server.
ObjectReader = Callable[[str, str], bytes | None]


@dataclass
class ConsoleModel:
    name: str
    arn: str
    status: str = "READY"
    source: str = ""
    polls: int = 0
    error: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ModelName": self.name, "ModelArn": self.arn, "ModelType": "REINFORCEMENT_LEARNING",
            "WasImported": bool(self.source), "CreationTime": 1700000000000, "Status": self.status,
            "AgentAlgorithm": "PPO", "ModelFramework": "TENSOR_FLOW", "AgentNetwork": "SIX_LAYER_DOUBLE_HEAD_OUTPUT",
        }
        if self.source:
            data["ImportModelS3SrcLocation"] = self.source
        if self.error:
            data["Error"] = self.error
        return data


@dataclass
class FakeConsole:
    secret: Secret
    read_object: ObjectReader
    existing: list[str] = field(default_factory=list)
    polls_until_done: int = 2
    models: list[ConsoleModel] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: FakeServer | None = None

    def start(self) -> FakeConsole:
        self.models = [ConsoleModel(name, self._arn()) for name in self.existing]
        self.server = FakeServer(self.handle)
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @staticmethod
    def _arn() -> str:
        return f"arn:aws:deepracer:us-east-1:{ACCOUNT}:model/reinforcement_learning/{uuid.uuid4().hex[:20]}"

    def operations(self, name: str) -> list[dict[str, Any]]:
        return [body for op, body in self.calls if op == name]

    # ---- protocol ----

    @staticmethod
    def error(status: int, kind: str, message: str) -> Response:
        return Response.json(status, {"__type": kind, "message": message}, CONTENT_TYPE)

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/":
            return self.error(404, "UnknownOperationException", f"{request.method} {request.path}")
        try:
            verify(method=request.method, raw_path=request.raw_path, headers=request.headers, body=request.body,
                   secret=self.secret, service="deepracer", region="us-east-1")
        except SignatureError as problem:
            return self.error(403, "InvalidSignatureException", str(problem))
        if request.header("Content-Type") != CONTENT_TYPE:
            return self.error(400, "SerializationException", "expected application/x-amz-json-1.1")
        target = request.header("X-Amz-Target")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        body = request.json()
        with self.lock:
            self.calls.append((operation, body))
            handler = {"ImportModel": self.import_model, "ListModels": self.list_models,
                       "GetModel": self.get_model}.get(operation)
            if handler is None:
                return self.error(400, "UnknownOperationException", f"unknown target {target!r}")
            return handler(body)

    def list_models(self, body: dict[str, Any]) -> Response:
        if body.get("ModelType") != "REINFORCEMENT_LEARNING":
            return self.error(400, "ValidationException", "ModelType must be REINFORCEMENT_LEARNING")
        size = int(body.get("MaxResults") or 10)
        start = int(base64.b64decode(body["NextToken"]).decode()) if body.get("NextToken") else 0
        page = self.models[start : start + size]
        answer: dict[str, Any] = {"Models": [m.describe() for m in page]}
        if start + size < len(self.models):
            answer["NextToken"] = base64.b64encode(str(start + size).encode()).decode()
        return Response.json(200, answer, CONTENT_TYPE)

    def import_model(self, body: dict[str, Any]) -> Response:
        missing = [k for k in ("Type", "Name", "ModelArtifactsS3Path", "RoleArn") if not body.get(k)]
        if missing:
            return self.error(400, "ValidationException", f"missing {', '.join(missing)}")
        name, path, role = body["Name"], body["ModelArtifactsS3Path"], body["RoleArn"]
        if body["Type"] != "REINFORCEMENT_LEARNING" or not NAME.match(name) or len(name) > 64:
            return self.error(400, "ValidationException", "invalid Type or Name")
        if not ROLE.fullmatch(role):
            return self.error(400, "ValidationException", f"invalid RoleArn {role!r}")
        if not path.startswith("s3://") or "/" not in path[5:]:
            return self.error(400, "ValidationException", f"ModelArtifactsS3Path {path!r} is not s3://bucket/prefix")
        if any(m.name == name for m in self.models):
            return self.error(400, "ConflictException", f"Model {name} already exists.")
        model = ConsoleModel(name, self._arn(), "IMPORTING", source=path)
        self.models.append(model)
        return Response.json(200, {"ModelArn": model.arn}, CONTENT_TYPE)

    def get_model(self, body: dict[str, Any]) -> Response:
        model = next((m for m in self.models if m.arn == body.get("ModelArn")), None)
        if model is None:
            return self.error(400, "NotFoundException", f"no model {body.get('ModelArn')}")
        if model.status == "IMPORTING":
            model.polls += 1
            if model.polls >= self.polls_until_done:
                self._finish(model)
        return Response.json(200, {"Model": model.describe()}, CONTENT_TYPE)

    def _finish(self, model: ConsoleModel) -> None:
        bucket, _, prefix = model.source[5:].partition("/")
        missing = [f for f in REQUIRED_FILES if self.read_object(bucket, f"{prefix}/{f}") is None]
        if missing:
            model.status = "IMPORT_ERROR"
            model.error = {"ErrorCode": "InvalidModel", "Details": f"Missing {', '.join(missing)}."}
        else:
            model.status = "READY"
