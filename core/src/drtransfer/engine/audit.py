"""The check after a model's last operation, before it is reported ``ok``: every object the plan wrote or
found already there is at the target with the size and ETag the engine saw, and every object it deleted
is gone. Pure: the scheduler builds the expectations, a worker lists the target, :func:`audit` compares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drtransfer.engine.checksums import clean_etag, is_plain_md5, multipart_count
from drtransfer.engine.messages import TargetState
from drtransfer.operations import CopyObject, DeleteObject, ObjectLocation, OperationResult, PutBytes

SHOWN = 5  # wrong keys named in the sentence; the rest are counted
WRITTEN = ("copied", "put", "skipped")


@dataclass(frozen=True)
class Expectation:
    """``size`` None: the object must be absent. ``etags``: the ETags the object is known to have (what
    the engine saw at the target, the MD5 of its bytes); none known: only the size can be compared."""

    location: ObjectLocation
    size: int | None
    etags: tuple[str, ...] = ()


def expectations(results: Sequence[OperationResult]) -> list[Expectation]:
    """What must be at the target after these operations: objects written or skipped with their size and
    ETag, objects deleted (and not written again by another operation) absent."""
    out: dict[ObjectLocation, Expectation] = {}
    for result in results:
        op = result.operation
        if result.status in WRITTEN and not isinstance(op, DeleteObject):
            size = result.bytes if result.status != "skipped" else op.size  # a copy writes the source as read
            etags = tuple(dict.fromkeys(e for e in (clean_etag(result.etag), _content_md5(result)) if e))
            out[op.target] = Expectation(op.target, size, etags)
        elif result.status == "deleted" and op.target not in out:
            out[op.target] = Expectation(op.target, None)
    return list(out.values())


def _content_md5(result: OperationResult) -> str:
    """The MD5 of the bytes written ("" unknown): a server that lists whole objects by MD5 shows it, even
    for an object it received in parts (rclone serve s3)."""
    op = result.operation
    if isinstance(op, PutBytes):
        return hashlib.md5(op.body).hexdigest()
    if isinstance(op, CopyObject) and is_plain_md5(op.source.etag):
        # Every copy strategy checks the bytes against a plain-MD5 source ETag; a source that changed
        # since planning is copied as read, and its new ETag is the one the engine saw.
        return clean_etag(op.source.etag)
    return ""


def _shape(etag: str) -> str:
    if is_plain_md5(etag):
        return "md5"
    return "multipart" if multipart_count(etag) else "other"


def audit(expected: Sequence[Expectation], found: Mapping[ObjectLocation, TargetState]) -> str | None:
    """None when the target matches, else one sentence naming what is missing or wrong."""
    problems: list[str] = []
    for item in expected:
        url, there = item.location.url, found.get(item.location)
        if item.size is None:
            if there is not None:
                problems.append(f"{url} is still at the target although it was deleted")
        elif there is None:
            problems.append(f"{url} is missing at the target")
        elif there.size != item.size:
            problems.append(f"{url} has {there.size} bytes at the target instead of {item.size}")
        else:
            # An ETag is only comparable with a known one of the same shape: servers may list an object
            # they assembled from parts by its whole MD5.
            etag = clean_etag(there.etag)
            known = [e for e in item.etags if _shape(e) == _shape(etag)]
            if known and etag not in known:
                problems.append(f"{url} has ETag {etag} at the target instead of {known[0]}")
    if not problems:
        return None
    named = ", ".join(problems[:SHOWN])
    if len(problems) > SHOWN:
        named += f" and {len(problems) - SHOWN} more"
    return f"The upload is incomplete: {named}; run the command again."
