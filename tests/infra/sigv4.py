"""Server-side check of an AWS Signature Version 4 ``Authorization`` header, written from AWS's
specification (canonical request, string to sign, derived key), independently of botocore's signer.

Used by the fake DeepRacer services: they accept a request only when it was signed with the expected
credentials for the expected service and region.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Secret:
    access_key: str
    secret_key: str
    session_token: str | None = None


class SignatureError(Exception):
    """Why a request's signature is not acceptable (the fake answers 403 with this)."""


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def verify(
    *,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: Secret,
    service: str,
    region: str,
    s3: bool = False,
) -> None:
    """Raise SignatureError unless ``headers`` carry a valid SigV4 signature of this request by ``secret``.

    ``raw_path`` is the request target as received (path and query, percent-encoded). ``s3`` selects S3's
    rules: the path is used as sent (other services encode it once more) and the payload hash is the
    ``x-amz-content-sha256`` header.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    match = _AUTH.match(lower.get("authorization", ""))
    if not match:
        raise SignatureError("Missing Authentication Token")
    if match["key"] != secret.access_key:
        raise SignatureError("The security token included in the request is invalid.")
    if (match["region"], match["service"]) != (region, service):
        raise SignatureError(f"Credential should be scoped to region {region!r} and service {service!r}.")
    if secret.session_token is not None and lower.get("x-amz-security-token") != secret.session_token:
        raise SignatureError("The security token included in the request is invalid.")
    amz_date = lower.get("x-amz-date", "")
    if not amz_date.startswith(match["date"]):
        raise SignatureError("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date.")
    signed = match["signed"].split(";")
    if "host" not in signed or any(name not in lower for name in signed):
        raise SignatureError("SignedHeaders must include host and only headers that were sent.")
    path, _, query = raw_path.partition("?")
    canonical_path = path if s3 else quote(path, safe="/~")
    payload = hashlib.sha256(body).hexdigest()
    if s3:
        declared = lower.get("x-amz-content-sha256", "")
        if declared not in ("UNSIGNED-PAYLOAD", payload):
            raise SignatureError("The provided 'x-amz-content-sha256' header does not match what was computed.")
        payload = declared
    canonical_headers = "".join(f"{name}:{' '.join(lower[name].split())}\n" for name in signed)
    parts = [method, canonical_path, _canonical_query(query), canonical_headers, ";".join(signed), payload]
    canonical = "\n".join(parts)
    scope = f"{match['date']}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(f"AWS4{secret.secret_key}".encode(), match["date"])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError("The request signature we calculated does not match the signature you provided.")
