"""DRoA's REST API (API Gateway with IAM auth): every request signed with SigV4 for ``execute-api`` using
the identity pool's credentials, ``Origin``/``Referer`` set to the website as the browser sends them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from drtransfer.errors import ConfigError, DrTransferError, TransferError
from drtransfer_plugins.droa.auth import DroaSession

if TYPE_CHECKING:
    import requests

BROKEN_LISTING = "Training item not found"  # ListModels, for a model record without its training record


def _message(payload: Any, text: str) -> str:
    """The reason in an error body: ``message`` (DRoA's handlers), ``Message`` (IAM) or ``errorMessage``
    (API Gateway's request validation); a body that is JSON without one (DRoA's unmodelled ``{}``) has none."""
    if isinstance(payload, dict):
        found = payload.get("message") or payload.get("Message") or payload.get("errorMessage") or ""
        return str(found).strip().rstrip(".")
    return "" if payload is not None else text[:200].strip().rstrip(".")


class DroaApi:
    def __init__(self, session: DroaSession, timeout: float = 30.0) -> None:
        self.session = session
        self.site = session.site
        self.timeout = timeout

    def url(self, path: str) -> str:
        return self.site.api_endpoint.rstrip("/") + path

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one signed request; any failure is one sentence (ConfigError for access, else TransferError)."""
        url = self.url(path)
        data = json.dumps(body).encode() if body is not None else b""
        creds = self.session.credentials()
        headers = {"Accept": "application/json", "Origin": self.site.url, "Referer": self.site.url + "/"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, creds.session_token), "execute-api",
                  self.site.region).add_auth(signed)
        import requests  # only when an import is made: every command loads this plugin at start-up

        try:
            response = requests.request(method, url, data=data or None, headers=dict(signed.headers.items()),
                                        timeout=self.timeout)
        except requests.RequestException as error:
            raise TransferError(
                f"Cannot reach the DRoA API at {self.site.api_endpoint} ({type(error).__name__}); check that DRoA "
                f"is up and apiEndpointUrl in {self.site.url}/env.js."
            ) from None
        return self._answer(method, path, response)

    def _answer(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 200:
            return payload if isinstance(payload, dict) else {}
        message = _message(payload, response.text)
        what = f"{method} {path}"
        error: DrTransferError
        if response.status_code in (401, 403):
            error = ConfigError(
                f"DRoA refused the credentials of {self.session.username!r} for {what} (HTTP {response.status_code}: "
                f"{message or 'no reason given'}); run 'drtransfer logout' and sign in again."
            )
        elif response.status_code == 400:
            error = TransferError(f"DRoA rejected {what}: {message or 'no reason given'}.")
        elif message == BROKEN_LISTING and path == "/models":
            error = TransferError(
                f"DRoA cannot list the models of {self.session.username!r} (HTTP {response.status_code}: {message}): "
                f"one of them has no training record, which an import DRoA answered with HTTP 500 leaves behind, "
                f"and until it is gone every import fails; a DRoA administrator has to delete that model's item "
                f"(status IMPORTING) from DRoA's DynamoDB table."
            )
        elif not message and path == "/importmodel":
            error = TransferError(
                f"DRoA failed {what} with HTTP {response.status_code} and gave no reason. It answers so when it "
                f"cannot store what training_params.yaml says (NUMBER_OF_OBSTACLES not a whole number, "
                f"OBJECT_POSITIONS entries without a lane) or when its ImportModel function fails; check the model's "
                f"training_params.yaml and that function's log in CloudWatch."
            )
        elif not message:
            error = TransferError(
                f"DRoA failed {what} with HTTP {response.status_code} and gave no reason; the log of DRoA's API "
                f"functions in CloudWatch has the cause."
            )
        else:
            error = TransferError(f"DRoA failed {what} (HTTP {response.status_code}): {message}.")
        raise error

    def check_access(self) -> None:
        """A cheap signed call (the first page of the user's models): DRoA is reachable and accepts us."""
        self.request("GET", "/models")

    def import_model(self, bucket: str, path: str, name: str, description: str | None) -> str:
        body: dict[str, Any] = {"s3Bucket": bucket, "s3Path": path, "modelName": name}
        if description:
            body["modelDescription"] = description
        answer = self.request("POST", "/importmodel", body)
        model_id = answer.get("modelId")
        if not isinstance(model_id, str) or not model_id:
            raise TransferError(f"DRoA accepted the import of {name!r} but returned no modelId.")
        return model_id

    def get_model(self, model_id: str) -> dict[str, Any]:
        model = self.request("GET", f"/models/{model_id}").get("model")
        if not isinstance(model, dict):
            raise TransferError(f"DRoA returned no model for GET /models/{model_id}.")
        return model
