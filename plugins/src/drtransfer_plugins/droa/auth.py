"""Signing in to DRoA: Cognito ``USER_PASSWORD_AUTH`` for an ID token, then the identity pool for
temporary AWS credentials (deepracer-domain §6.1 step 2).

The credentials (never the password, never a token) are cached in a 0600 file under
``$DRTRANSFER_CACHE_DIR/droa/`` (default ``$XDG_CACHE_HOME/drtransfer/droa/``, i.e.
``~/.cache/drtransfer/droa/``) and reused while more than 60 s of validity remain; ``drtransfer logout``
deletes them. Within one command the Cognito refresh token is kept in memory only, so credentials that
run out during a long transfer are renewed without asking for the password again.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from botocore import UNSIGNED

from drtransfer.endpoints import Credentials
from drtransfer.errors import ConfigError
from drtransfer.importing import SecretSource
from drtransfer_plugins.droa.site import SiteConfig

CACHE_ENV = "DRTRANSFER_CACHE_DIR"
COGNITO_ENDPOINT_ENV = "DR_DROA_COGNITO_ENDPOINT_URL"
MIN_VALID_SECONDS = 60.0


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]) / "droa"
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "drtransfer" / "droa"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class IdentityCredentials:
    """Temporary credentials of the identity pool and when they expire."""

    credentials: Credentials
    expiration: datetime.datetime
    identity_id: str

    def valid_for(self, seconds: float) -> bool:
        return self.expiration - _now() > datetime.timedelta(seconds=seconds)


class CredentialCache:
    """One 0600 JSON file per (site, identity pool, user) in a 0700 directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, site: SiteConfig, username: str) -> Path:
        key = hashlib.sha256(f"{site.url}|{site.identity_pool_id}|{username}".encode()).hexdigest()[:16]
        return self.directory / f"{key}.json"

    def load(self, site: SiteConfig, username: str) -> IdentityCredentials | None:
        """The cached credentials, or None when absent, unreadable or not ours."""
        try:
            data = json.loads(self.path(site, username).read_text())
            return IdentityCredentials(
                Credentials(data["accessKeyId"], data["secretKey"], data["sessionToken"]),
                datetime.datetime.fromisoformat(data["expiration"]),
                data["identityId"],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, site: SiteConfig, username: str, found: IdentityCredentials) -> None:
        """Write atomically with mode 0600 from the start (the file never exists with wider rights)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            self.directory.chmod(0o700)
        data = {
            "site": site.url,
            "username": username,
            "identityPoolId": site.identity_pool_id,
            "identityId": found.identity_id,
            "accessKeyId": found.credentials.access_key,
            "secretKey": found.credentials.secret_key,
            "sessionToken": found.credentials.session_token,
            "expiration": found.expiration.isoformat(),
        }
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")  # created 0600
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(temp, self.path(site, username))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def clear(self) -> list[Path]:
        """Delete every cached sign-in; returns the files removed."""
        removed = []
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.json")):
                path.unlink()
                removed.append(path)
        return removed


def _client(service: str, site: SiteConfig, endpoint_url: str | None) -> Any:
    # InitiateAuth, GetId and GetCredentialsForIdentity are unauthenticated calls: sign nothing, so no
    # local AWS credentials are ever sent to DRoA's account.
    config = botocore.config.Config(signature_version=UNSIGNED, connect_timeout=10, read_timeout=30,
                                    retries={"mode": "standard", "max_attempts": 3})
    return boto3.session.Session().client(service, region_name=site.region, endpoint_url=endpoint_url, config=config)


@dataclass
class DroaSession:
    """The signed-in user of one DRoA site during one command."""

    site: SiteConfig
    username: str
    cache: CredentialCache
    secret: SecretSource | None = field(default=None, repr=False)
    cognito_endpoint: str | None = None
    current: IdentityCredentials | None = field(default=None, repr=False)
    _refresh_token: str | None = field(default=None, repr=False)

    def sign_in(self) -> None:
        """Use the cached credentials if they last more than 60 s, else sign in with the password."""
        cached = self.cache.load(self.site, self.username)
        if cached is not None and cached.valid_for(MIN_VALID_SECONDS):
            self.current = cached
            return
        self._password_sign_in()

    def credentials(self, min_valid: float = MIN_VALID_SECONDS) -> Credentials:
        """Credentials valid for at least ``min_valid`` seconds, renewed (refresh token, else password)."""
        if self.current is None or not self.current.valid_for(min_valid):
            if self._refresh_token is not None:
                self._exchange(self._refresh(self._refresh_token))
            else:
                self._password_sign_in()
        assert self.current is not None
        return self.current.credentials

    def _password_sign_in(self) -> None:
        if self.secret is None:
            raise ConfigError(
                f"Signing in to DRoA at {self.site.url} as {self.username!r} needs the password and there is no "
                f"terminal to ask for it; pipe it in with --password-stdin."
            )
        password = self.secret(f"DRoA password for {self.username} at {self.site.url}: ")
        client = _client("cognito-idp", self.site, self.cognito_endpoint)
        try:
            response = client.initiate_auth(
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": self.username, "PASSWORD": password},
                ClientId=self.site.user_pool_client_id,
            )
        except Exception as error:  # one sentence, never the password
            raise self._sign_in_error(error) from None
        finally:
            del password
        if response.get("ChallengeName"):
            raise ConfigError(
                f"DRoA asks {self.username!r} to complete {response['ChallengeName']} first; sign in once on "
                f"{self.site.url} and run the command again."
            )
        result = response.get("AuthenticationResult") or {}
        if not result.get("IdToken"):
            raise ConfigError(f"Signing in to DRoA at {self.site.url} returned no ID token.")
        self._refresh_token = result.get("RefreshToken")
        self._exchange(str(result["IdToken"]))

    def _refresh(self, refresh_token: str) -> str:
        client = _client("cognito-idp", self.site, self.cognito_endpoint)
        try:
            response = client.initiate_auth(
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
                ClientId=self.site.user_pool_client_id,
            )
        except Exception as error:
            raise self._sign_in_error(error) from None
        return str(response["AuthenticationResult"]["IdToken"])

    def _exchange(self, id_token: str) -> None:
        """ID token -> identity id -> temporary credentials; cached."""
        client = _client("cognito-identity", self.site, self.cognito_endpoint)
        logins = {self.site.login_key: id_token}
        try:
            identity = client.get_id(IdentityPoolId=self.site.identity_pool_id, Logins=logins)["IdentityId"]
            found = client.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
        except Exception as error:
            raise self._sign_in_error(error, "get AWS credentials from the identity pool of") from None
        expiration = found["Expiration"]
        if not isinstance(expiration, datetime.datetime):
            expiration = datetime.datetime.fromtimestamp(float(expiration), datetime.UTC)
        self.current = IdentityCredentials(
            Credentials(found["AccessKeyId"], found["SecretKey"], found["SessionToken"]), expiration, identity
        )
        self.cache.save(self.site, self.username, self.current)

    def _sign_in_error(self, error: Exception, action: str = "sign in to") -> ConfigError:
        where = f"DRoA at {self.site.url}"
        if isinstance(error, botocore.exceptions.ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            message = str(error.response.get("Error", {}).get("Message", "")).rstrip(".")
            if code in ("NotAuthorizedException", "UserNotFoundException"):
                return ConfigError(
                    f"Could not {action} {where} as {self.username!r}: {message or code}; check DR_DROA_USERNAME "
                    f"and the password."
                )
            return ConfigError(f"Could not {action} {where} as {self.username!r}: {code}: {message}.")
        if isinstance(error, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
            return ConfigError(f"Cannot reach Cognito in {self.site.region} to {action} {where}; check the network.")
        return ConfigError(f"Could not {action} {where}: {type(error).__name__}: {error}.")
