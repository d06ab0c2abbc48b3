"""SigV4 for the lean data path's requests, by a maintained signer: awscrt's C signer, else botocore's.

Both sign with ``UNSIGNED-PAYLOAD`` (the target verifies every body the lean path sends: Content-MD5, or
part ETags that must combine to the source's ETag) and take the credentials botocore resolved for the
endpoint. awscrt (a dependency of ``drtransfer``) signs a request in about 15 us of CPU where botocore
needs about 145 us; a small object's copy signs two requests, so on 2,000 small objects this is ~0.5
CPU-s. ``DRTRANSFER_LEAN_SIGNER=botocore`` selects botocore's signer (kept for comparison and for a
Python without awscrt's wheels).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from drtransfer.endpoints import Credentials


class Signer(Protocol):
    def sign(self, method: str, url: str, path: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The request's headers with SigV4's (``url``: scheme://netloc + path; ``path``: path + query)."""


class _UnsignedPayload(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
    """botocore's S3 SigV4 signer with ``UNSIGNED-PAYLOAD``."""

    def payload(self, request: Any) -> str:
        return str(botocore.auth.UNSIGNED_PAYLOAD)


class BotocoreSigner:
    def __init__(self, credentials: Credentials, region: str) -> None:
        keys = credentials.access_key, credentials.secret_key, credentials.session_token
        self._auth = _UnsignedPayload(botocore.credentials.Credentials(*keys), "s3", region)

    def sign(self, method: str, url: str, path: str, headers: Mapping[str, str]) -> dict[str, str]:
        request = botocore.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers))
        self._auth.add_auth(request)
        return dict(request.headers.items())


class CrtSigner:
    def __init__(self, credentials: Credentials, region: str) -> None:
        from awscrt import auth  # type: ignore[import-untyped,unused-ignore]

        provider = auth.AwsCredentialsProvider.new_static(
            credentials.access_key, credentials.secret_key, credentials.session_token
        )
        self._auth = auth
        self._config = auth.AwsSigningConfig(
            algorithm=auth.AwsSigningAlgorithm.V4,
            signature_type=auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=provider,
            region=region,
            service="s3",
            use_double_uri_encode=False,  # S3: the path is encoded once (lean.address quotes the key)
            should_normalize_uri_path=False,
            signed_body_value=auth.AwsSignedBodyValue.UNSIGNED_PAYLOAD,
            signed_body_header_type=auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )

    def sign(self, method: str, url: str, path: str, headers: Mapping[str, str]) -> dict[str, str]:
        from awscrt import http  # type: ignore[import-untyped,unused-ignore]

        request = http.HttpRequest(method, path, http.HttpHeaders(list(headers.items())))
        self._auth.aws_sign_request(request, self._config).result()  # static credentials: done at once
        return dict(request.headers)


def make_signer(credentials: Credentials, region: str) -> Signer:
    """awscrt's signer when awscrt imports (and ``DRTRANSFER_LEAN_SIGNER`` is not ``botocore``)."""
    if os.environ.get("DRTRANSFER_LEAN_SIGNER", "") != "botocore":
        try:
            return CrtSigner(credentials, region)
        except ImportError:
            pass
    return BotocoreSigner(credentials, region)
