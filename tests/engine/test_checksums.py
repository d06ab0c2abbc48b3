"""Pure logic of verification and part layout (no server needed)."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest

from drtransfer.engine import EngineSettings, MiB
from drtransfer.engine.checksums import (
    clean_etag,
    combine_crcs,
    crc_combine,
    crc_to_b64,
    is_plain_md5,
    multipart_count,
    multipart_etag,
    source_etag_from_metadata,
    stored_checksum,
    whole_checksum,
)
from drtransfer.engine.multipart import own_parts
from drtransfer.errors import ConfigError


def test_crc32_of_parts_combines_to_the_whole() -> None:
    parts = [os.urandom(n) for n in (1, 1000, 65_537, 3)]
    combined = combine_crcs(((zlib.crc32(p), len(p)) for p in parts), "crc32")
    assert combined == zlib.crc32(b"".join(parts))
    assert crc_combine(zlib.crc32(b"abc"), zlib.crc32(b""), 0, 0xEDB88320) == zlib.crc32(b"abc")


def test_crc32c_combine_matches_a_reference_implementation() -> None:
    def crc32c(data: bytes, crc: int = 0) -> int:  # bitwise reference, fine for a few bytes
        crc ^= 0xFFFFFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    a, b = os.urandom(300), os.urandom(77)
    assert combine_crcs([(crc32c(a), len(a)), (crc32c(b), len(b))], "crc32c") == crc32c(a + b)


def test_etag_shapes() -> None:
    md5 = hashlib.md5(b"x").hexdigest()
    assert clean_etag(f'"{md5.upper()}"') == md5
    assert is_plain_md5(md5) and multipart_count(md5) is None
    assert multipart_count(f"{md5}-12") == 12 and not is_plain_md5(f"{md5}-12")
    digests = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert multipart_etag(digests) == hashlib.md5(b"".join(digests)).hexdigest() + "-2"
    assert source_etag_from_metadata({"Drtransfer-Source-Etag": f'"{md5}"'}) == md5  # rclone capitalises
    assert source_etag_from_metadata({"other": "1"}) is None


def test_stored_whole_object_checksums() -> None:
    data = b"hello"
    crc = crc_to_b64(zlib.crc32(data))
    assert stored_checksum({"ChecksumCRC32": crc}) == ("crc32", crc)
    assert stored_checksum({"ChecksumCRC32": crc, "ChecksumType": "COMPOSITE"}) is None
    assert stored_checksum({"ChecksumCRC32": "abc==-3"}) is None  # a checksum of part checksums
    assert whole_checksum("crc32", data) == crc
    assert whole_checksum("sha256", data) == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_own_parts_cover_the_object_with_at_most_10000_parts() -> None:
    parts = own_parts(13 * MiB + 1, 5 * MiB)
    assert [(p.start, p.end) for p in parts] == [(0, 5 * MiB), (5 * MiB, 10 * MiB), (10 * MiB, 13 * MiB + 1)]
    huge = own_parts(100_000 * 5 * MiB, 5 * MiB)
    assert len(huge) <= 10_000 and huge[-1].end == 100_000 * 5 * MiB


@pytest.mark.parametrize(
    "bad",
    [{"part_size": MiB}, {"concurrency": 0}, {"processes": -1}, {"start_method": "thread"}, {"data_path": "curl"}],
)
def test_invalid_settings_are_one_sentence(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"^Invalid transfer settings: .*\.$"):
        EngineSettings(**bad)  # type: ignore[arg-type]
