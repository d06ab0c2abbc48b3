"""The ``aws-console`` import target: ImportModel of the uploaded ``s3://bucket/prefix`` (legacy).

What DRfC's ``import-model.py`` did (until DRfC removed the console import), checked before anything is copied:
``DR_UPLOAD_S3_ROLE`` must be an IAM role ARN, the name must not exist yet (a paginated ListModels).
After the upload, ``ImportModel(Name, ModelArtifactsS3Path, RoleArn, Type=REINFORCEMENT_LEARNING)``;
``--wait`` polls GetModel until READY or an error status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from drtransfer.endpoints import ClientSettings, Credentials, make_s3_client
from drtransfer.errors import ConfigError, DrTransferError, TransferError
from drtransfer.events import ImportSubmitted
from drtransfer.importing import ImportOptions, ImportResult, Notify, PreparedImport, wait_for_imports
from drtransfer.runconfig import RunConfig
from drtransfer.s3errors import describe_client_error, is_not_found
from drtransfer_plugins.aws_console.client import ENDPOINT_ENV, SERVICE_URL, deepracer_client

TARGET = "aws-console"
ROLE_ENV = "DR_UPLOAD_S3_ROLE"
ROLE_PATTERN = re.compile(r"arn:aws(-iso)?:iam::[0-9]{12}:role/(service-role/)?[a-zA-Z0-9_+=,.\-@]{1,64}")
ROLE_PLACEHOLDERS = {"", "to-be-defined", "not-defined"}
READY = frozenset({"READY"})
FAILED = frozenset({"ERROR", "IMPORT_ERROR"})
MAX_PAGES = 1000  # 25 models a page: far beyond any account


@dataclass(frozen=True)
class ConsoleState:
    """Per item: what submit needs (no secret beyond the resolved credentials, hidden in repr)."""

    role_arn: str
    endpoint_url: str | None
    credentials: Credentials | None
    profile: str | None

    @property
    def service(self) -> str:
        return self.endpoint_url or SERVICE_URL

    def who(self) -> str:
        return f" of profile {self.profile}" if self.profile else ""


def role_for(run: RunConfig, options: ImportOptions) -> str:
    role = options.env(run, ROLE_ENV)
    if role in ROLE_PLACEHOLDERS:
        raise ConfigError(
            f"The AWS DeepRacer console import needs an IAM role: set {ROLE_ENV} (system.env) to the ARN of a role "
            f"the DeepRacer service can use to read s3://{run.upload_bucket}, e.g. arn:aws:iam::123456789012:role/NAME."
        )
    if not ROLE_PATTERN.fullmatch(role):
        raise ConfigError(
            f"{ROLE_ENV} {role!r} is not an IAM role ARN; write it as arn:aws:iam::<12-digit account>:role/NAME."
        )
    return role


def describe_error(error: Exception, state: ConsoleState, action: str) -> DrTransferError:
    """One sentence for a failed console call."""
    if isinstance(error, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
        return ConfigError(f"Cannot reach the AWS DeepRacer console at {state.service} to {action}; check the network.")
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return ConfigError(f"No AWS credentials to {action} in the AWS DeepRacer console; set DR_UPLOAD_S3_PROFILE.")
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", "")).rstrip(".")
        if code in {"UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
                    "ExpiredTokenException", "InvalidClientTokenId"}:
            return ConfigError(
                f"The AWS DeepRacer console refused the credentials{state.who()} to {action} ({code}: {message})."
            )
        return TransferError(f"The AWS DeepRacer console refused to {action}: {code}: {message}.")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return TransferError(f"Could not {action} in the AWS DeepRacer console: {error}.")
    return TransferError(f"Could not {action} in the AWS DeepRacer console: {type(error).__name__}: {error}.")


class ConsoleImporter:
    """Registered as ``aws-console``. ``endpoint_url`` (or ``DR_DEEPRACER_ENDPOINT_URL``) replaces the
    service URL."""

    needs_local_model = False  # the console imports what drtransfer upload put in the upload bucket

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    def default_priority(self, run: RunConfig, options: ImportOptions) -> int | None:
        """The fallback default: any run without a more specific target."""
        return 0

    def _state(self, item: PreparedImport, options: ImportOptions) -> ConsoleState:
        run = item.run
        role = role_for(run, options)
        if run.upload is None:
            raise ConfigError(
                f"{run.label}: the AWS DeepRacer console imports from the upload bucket, and none is configured."
            )
        endpoint_url = self.endpoint_url or options.env(run, ENDPOINT_ENV) or None
        if run.upload.url and endpoint_url is None:
            raise ConfigError(
                f"The AWS DeepRacer console imports only from AWS S3, but the upload bucket of {run.label} is on "
                f"{run.upload.url} (DR_UPLOAD_S3_ENDPOINT_URL); upload to an AWS bucket or import into DRoA "
                f"(--to droa)."
            )
        return ConsoleState(role, endpoint_url, run.upload.credentials, run.upload.profile)

    def prepare(self, items: Sequence[PreparedImport], options: ImportOptions) -> None:
        for item in items:
            item.state = self._state(item, options)
        if options.dry_run:
            return
        listed: dict[tuple[str, Credentials | None], set[str]] = {}
        for item in items:
            state: ConsoleState = item.state
            key = (state.service, state.credentials)
            if key not in listed:
                listed[key] = self._names(state)
            if item.name in listed[key]:
                raise ConfigError(
                    f"A model named {item.name!r} already exists in the AWS DeepRacer console; choose another name "
                    f"(-I NAME / --name, or a new DR_UPLOAD_S3_PREFIX) or delete that model first."
                )
            if not options.uploading:
                self._check_uploaded(item)

    def _names(self, state: ConsoleState) -> set[str]:
        client = deepracer_client(state.credentials, endpoint_url=state.endpoint_url)
        names: set[str] = set()
        token: str | None = None
        try:
            for _page in range(MAX_PAGES):
                kwargs: dict[str, Any] = {"ModelType": "REINFORCEMENT_LEARNING", "MaxResults": 25}
                if token:
                    kwargs["NextToken"] = token
                page = client.list_models(**kwargs)
                names.update(str(m.get("ModelName", "")) for m in page.get("Models", []))
                token = page.get("NextToken")
                if not token:
                    break
        except Exception as error:
            raise describe_error(error, state, "list the existing models") from None
        return names

    @staticmethod
    def _check_uploaded(item: PreparedImport) -> None:
        """``drtransfer import``: the model must already be at the upload target."""
        run = item.run
        assert run.upload is not None  # checked in _state
        client = make_s3_client(run.upload, ClientSettings(max_attempts=2, connect_timeout=5, read_timeout=30))
        prefix = run.upload_prefix.strip("/")
        for relative in ("model/deepracer_checkpoints.json", "model_metadata.json"):
            try:
                client.head_object(Bucket=run.upload_bucket, Key=f"{prefix}/{relative}")
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
                if is_not_found(error):
                    raise ConfigError(
                        f"Nothing to import at {run.target_url}/: {relative} is missing; upload the model first "
                        f"(drtransfer upload, or drtransfer upload -i to upload and import at once)."
                    ) from None
                raise describe_client_error(error, endpoint=run.upload, bucket=run.upload_bucket,
                                            action="read") from None

    def submit(
        self, items: Sequence[PreparedImport], options: ImportOptions, *, wait: bool, notify: Notify
    ) -> list[ImportResult]:
        results: list[ImportResult] = []
        clients: dict[int, Any] = {}
        for item in items:
            state: ConsoleState = item.state
            run = item.run
            result = ImportResult(run.run_id, TARGET, item.name, "failed", source=run.target_url)
            results.append(result)
            try:
                client = deepracer_client(state.credentials, endpoint_url=state.endpoint_url)
                request: dict[str, Any] = {
                    "Name": item.name,
                    "ModelArtifactsS3Path": run.target_url,
                    "RoleArn": state.role_arn,
                    "Type": "REINFORCEMENT_LEARNING",
                }
                if options.description:
                    request["Description"] = options.description
                response = client.import_model(**request)
            except Exception as error:
                result.message = str(describe_error(error, state, f"import {item.name!r}"))
                continue
            result.status = "submitted"
            result.model_id = str(response["ModelArn"])
            result.service_status = "IMPORTING"
            clients[id(result)] = client
            notify(ImportSubmitted(run_id=run.run_id, target=TARGET, model_name=item.name, model_id=result.model_id,
                                   experiment=run.experiment or ""))
        if wait:
            states = {id(r): i.state for r, i in zip(results, items, strict=True)}

            def read_status(result: ImportResult) -> tuple[str, str | None]:
                try:
                    model = clients[id(result)].get_model(ModelArn=result.model_id)["Model"]
                except Exception as error:
                    action = f"read the status of {result.model_name!r}"
                    raise describe_error(error, states[id(result)], action) from None
                status = str(model.get("Status", ""))
                problem = model.get("Error") or {}
                details = str(problem.get("Details") or "").rstrip(".")
                code = problem.get("ErrorCode")
                message = f"the AWS DeepRacer console reported {status}" + (f": {details}" if details else "")
                message += f" ({code})." if code else "."
                return status, message

            wait_for_imports(results, read_status, ready=READY, failed=FAILED, options=options, notify=notify)
        return results
