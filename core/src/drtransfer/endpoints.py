"""S3 endpoints and the clients that talk to them.

An :class:`Endpoint` is plain, picklable data (URL, region, resolved credentials), so it can be sent to
worker processes, which build their own clients with :func:`make_s3_client` (botocore clients cannot be
pickled). Credentials are resolved once in the parent (:func:`resolve_credentials`) and never printed:
their ``repr`` hides every secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from drtransfer.errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    """Static credentials; ``repr`` shows only a masked access key id."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Credentials(access_key={mask(self.access_key)!r})"


def mask(value: str) -> str:
    """Show the first 4 characters of an identifier and hide the rest (never use on a secret)."""
    return value[:4] + "…" if len(value) > 4 else "…"


@dataclass(frozen=True)
class Endpoint:
    """Where a bucket lives and who we are there.

    ``url`` is ``None`` for AWS itself; ``profile`` is kept for messages ("profile minio"), the
    credentials are what clients use.
    """

    name: str
    url: str | None
    region: str
    credentials: Credentials | None
    profile: str | None = None

    def describe(self) -> str:
        where = self.url or f"AWS S3 ({self.region})"
        return f"{self.name} endpoint {where}"

    def same_store(self, other: Endpoint) -> bool:
        """True when a server-side copy between the two is possible (same server, same identity)."""
        return (self.url, self.region, self.credentials) == (other.url, other.region, other.credentials)


@dataclass(frozen=True)
class ClientSettings:
    """Connection settings shared by every client the engine creates."""

    max_pool_connections: int = 10
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # botocore's default "standard" mode shares a small retry quota across a client and gives up
    # within ~1.5 s of a server outage; "legacy" with more attempts rides out several seconds, and
    # the engine adds its own outer retry on top.
    retry_mode: str = "legacy"
    max_attempts: int = 10


def resolve_credentials(
    name: str,
    *,
    profile: str | None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
) -> Credentials | None:
    """Resolve credentials once: explicit keys win, else the named profile, else boto3's default chain."""
    if access_key and secret_key:
        return Credentials(access_key, secret_key, session_token)
    try:
        session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
        found = session.get_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(
            f"The {name} AWS profile {profile!r} does not exist; add it to ~/.aws/credentials "
            f"or set the right profile name."
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise ConfigError(f"Cannot read the {name} credentials: {error}.") from None
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def make_s3_client(endpoint: Endpoint, settings: ClientSettings | None = None) -> Any:
    """A boto3 S3 client for ``endpoint``, configured for S3-compatible servers as well as AWS."""
    settings = settings or ClientSettings()
    config = botocore.config.Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint.url else {},
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        # Some servers return a whole-object checksum on ranged GETs; we verify content ourselves.
        response_checksum_validation="when_required",
        request_checksum_calculation="when_required",
    )
    creds = endpoint.credentials
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=creds.access_key if creds else None,
        aws_secret_access_key=creds.secret_key if creds else None,
        aws_session_token=creds.session_token if creds else None,
        config=config,
    )
