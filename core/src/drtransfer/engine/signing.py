"""Skip SigV4's SHA-256 of request bodies the engine verifies otherwise (plain-HTTP endpoints).

Over ``http://`` botocore always hashes a PUT body with SHA-256 for the signature (over HTTPS it already
sends ``UNSIGNED-PAYLOAD`` for PutObject and UploadPart). Every PutObject body the engine writes carries
``Content-MD5`` or an ``x-amz-checksum-*`` header, which SigV4 signs like any other header and the server
checks against the body, so the body stays bound to the signature. Every UploadPart body carries
Content-MD5 or belongs to an upload that is completed only when the part ETags the target reports
combine to the source's ETag. Hashing them a second time only costs CPU (0.7 CPU-s per GiB).
"""

from __future__ import annotations

from typing import Any

import botocore.auth

SIGNER_NAME = "drtransfer-s3v4-md5"
# Operations whose bodies the engine sends with Content-MD5, a checksum header (x-amz-checksum-crc32c ...),
# or, for parts of an md5-N source, verified by the part ETags before the upload is completed.
OPERATIONS = ("PutObject", "UploadPart")
CHECKSUM_HEADER = "x-amz-checksum-"


class S3SigV4ContentMD5Auth(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
    """S3's SigV4 signer, with ``UNSIGNED-PAYLOAD`` for UploadPart and for a PutObject that has a Content-MD5
    or checksum header."""

    def _should_sha256_sign_payload(self, request: Any) -> bool:
        headers = [name.lower() for name in request.headers]
        if "uploadId=" in str(request.url) or any(h == "content-md5" or h.startswith(CHECKSUM_HEADER) for h in headers):
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
        client.meta.events.register_first(f"choose-signer.s3.{operation}", _choose, unique_id=SIGNER_NAME + operation)
