"""DRoA's REST API (API Gateway with IAM auth): every request signed with SigV4 for ``execute-api`` using
the identity pool's credentials, ``Origin``/``Referer`` set to the website as the browser sends them."""

from __future__ import annotations

import json
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from drtransfer.errors import ConfigError, DrTransferError, TransferError
from drtransfer_plugins.droa.auth import DroaSession


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
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        message = str(payload.get("message") or payload.get("Message") or response.text[:200]).strip().rstrip(".")
        if response.status_code == 200:
            return payload
        what = f"{method} {path}"
        error: DrTransferError
        if response.status_code in (401, 403):
            error = ConfigError(
                f"DRoA refused the credentials of {self.session.username!r} for {what} (HTTP {response.status_code}: "
                f"{message}); run 'drtransfer logout' and sign in again."
            )
        elif response.status_code == 400:
            error = TransferError(f"DRoA rejected {what}: {message}.")
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
