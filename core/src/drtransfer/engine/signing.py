"""Skip SigV4's SHA-256 of request bodies that already carry a signed Content-MD5 (plain-HTTP endpoints).

Over ``http://`` botocore always hashes a PUT body with SHA-256 for the signature (over HTTPS it already
sends ``UNSIGNED-PAYLOAD`` for PutObject and UploadPart). Every body the engine writes carries
``Content-MD5``, which SigV4 signs like any other header and the server checks against the body, so the
body stays bound to the signature; hashing it a second time only costs CPU (about a tenth of a worker's).
"""

from __future__ import annotations

from typing import Any

import botocore.auth

SIGNER_NAME = "drtransfer-s3v4-md5"
# Operations whose bodies the engine always sends with Content-MD5.
OPERATIONS = ("PutObject", "UploadPart")


class S3SigV4ContentMD5Auth(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
    """S3's SigV4 signer, with ``UNSIGNED-PAYLOAD`` when the request has a Content-MD5 header."""

    def _should_sha256_sign_payload(self, request: Any) -> bool:
        if "Content-MD5" in request.headers:
            return False
        return bool(super()._should_sha256_sign_payload(request))


def _choose(signature_version: str = "", **_: Any) -> str | None:
    return SIGNER_NAME if signature_version == "s3v4" else None


def use_content_md5_signing(client: Any) -> None:
    """Sign ``client``'s PutObject and UploadPart bodies through their Content-MD5 (plain HTTP only)."""
    if not str(client.meta.endpoint_url).startswith("http://"):
        return
    botocore.auth.AUTH_TYPE_MAPS.setdefault(SIGNER_NAME, S3SigV4ContentMD5Auth)
    for operation in OPERATIONS:
        # first: botocore's own choose-signer handler would otherwise answer "s3v4"
        client.meta.events.register_first(f"choose-signer.s3.{operation}", _choose)
