"""ETags, Content-MD5 and CRC arithmetic used to verify copies end to end.

S3 ETags come in two shapes that carry content information: a plain MD5 (single PUT, CopyObject of
one) and ``md5(concat(part md5s))-N`` (multipart). CRC32/CRC32C can be combined from part CRCs
(:func:`crc_combine`), so a whole-object CRC can be checked while parts move in parallel.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART = re.compile(r"^[0-9a-f]{32}-(\d+)$")

EMPTY_MD5 = hashlib.md5(b"").hexdigest()
SOURCE_ETAG_META = "drtransfer-source-etag"

# Reflected polynomials of the two CRCs S3 combines across parts.
CRC_POLYS = {"crc32": 0xEDB88320, "crc32c": 0x82F63B78}


def clean_etag(etag: str | None) -> str:
    """An ETag without quotes and in lower case (servers differ in both)."""
    return (etag or "").strip().strip('"').lower()


def is_plain_md5(etag: str) -> bool:
    return bool(_PLAIN_MD5.match(clean_etag(etag)))


def multipart_count(etag: str) -> int | None:
    """N of an ``md5-N`` multipart ETag, else None."""
    match = _MULTIPART.match(clean_etag(etag))
    return int(match.group(1)) if match else None


def multipart_etag(part_md5s: Iterable[bytes]) -> str:
    """The ETag S3 gives a multipart object whose parts have these binary MD5s."""
    digests = list(part_md5s)
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def content_md5(digest: bytes) -> str:
    """The Content-MD5 header value for a binary MD5 digest."""
    return base64.b64encode(digest).decode("ascii")


def source_etag_from_metadata(metadata: Mapping[str, str] | None) -> str | None:
    """The source ETag recorded on a target object (some servers capitalise metadata keys)."""
    for key, value in (metadata or {}).items():
        if key.lower() == SOURCE_ETAG_META:
            return clean_etag(value)
    return None


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc_combine(crc1: int, crc2: int, len2: int, poly: int) -> int:
    """CRC of A+B from crc(A), crc(B) and len(B) for a reflected 32-bit CRC (zlib's crc32_combine method:
    apply the "append len2 zero bytes" operator to crc1 by repeated squaring, then xor crc2)."""
    if len2 <= 0:
        return crc1
    odd = [poly] + [1 << n for n in range(31)]  # operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def combine_crcs(parts: Iterable[tuple[int, int]], algorithm: str) -> int:
    """Whole-object CRC from ``(crc, length)`` of consecutive parts."""
    poly = CRC_POLYS[algorithm]
    total: int | None = None
    for crc, length in parts:
        total = crc if total is None else crc_combine(total, crc, length, poly)
    return total or 0


def crc_to_b64(value: int) -> str:
    """S3's header form of a CRC32/CRC32C: base64 of the 4 big-endian bytes."""
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def _crc32c_function() -> Callable[[Any, int], int] | None:
    """A fast CRC32C if one is installed (crc32c or awscrt); pure Python would be far too slow."""
    try:
        import crc32c  # type: ignore[import-not-found,unused-ignore]

        return lambda data, value: int(crc32c.crc32c(data, value))
    except ImportError:
        pass
    try:
        from awscrt import checksums  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return lambda data, value: int(checksums.crc32c(data, value))
    except ImportError:
        return None


_CRC32C = _crc32c_function()


def crc_function(algorithm: str) -> Callable[[Any, int], int] | None:
    """An incremental ``f(data, previous) -> crc`` for ``crc32``/``crc32c``, None when unavailable."""
    if algorithm == "crc32":
        return zlib.crc32
    if algorithm == "crc32c":
        return _CRC32C
    return None


def stored_checksum(head: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(algorithm, base64 value)`` of a whole-object checksum in a HeadObject/GetObject response, if any.

    Composite (``…-N``) checksums of multipart objects are not whole-object values and are ignored.
    """
    if str(head.get("ChecksumType", "FULL_OBJECT")).upper() != "FULL_OBJECT":
        return None
    for field, algorithm in (
        ("ChecksumCRC32", "crc32"),
        ("ChecksumCRC32C", "crc32c"),
        ("ChecksumSHA256", "sha256"),
        ("ChecksumSHA1", "sha1"),
    ):
        value = head.get(field)
        if value and "-" not in str(value):
            return algorithm, str(value)
    return None


def whole_checksum(algorithm: str, data: bytes | bytearray) -> str | None:
    """Base64 checksum of ``data`` in S3's form, None when the algorithm cannot be computed here."""
    if algorithm in ("crc32", "crc32c"):
        function = crc_function(algorithm)
        return crc_to_b64(function(data, 0)) if function else None
    if algorithm == "sha256":
        return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    if algorithm == "sha1":
        return base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")
    return None


__all__ = [
    "EMPTY_MD5",
    "SOURCE_ETAG_META",
    "clean_etag",
    "combine_crcs",
    "content_md5",
    "crc_combine",
    "crc_function",
    "crc_to_b64",
    "is_plain_md5",
    "multipart_count",
    "multipart_etag",
    "source_etag_from_metadata",
    "stored_checksum",
    "whole_checksum",
]
