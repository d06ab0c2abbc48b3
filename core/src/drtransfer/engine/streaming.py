"""Copies through the worker between endpoints that cannot copy server-side: one GET then one PUT, a
multipart stream of ranged GETs feeding UploadParts, or one GET read in order feeding parallel UploadParts.

Every byte read is checked against the source's ETag or stored checksum before the target shows it.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import zlib
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from drtransfer.engine import lean
from drtransfer.engine.buffers import READ_ERRORS, as_botocore_error, direct_reader
from drtransfer.engine.checksums import (
    clean_etag,
    content_md5,
    crc_function,
    crc_to_b64,
    is_plain_md5,
    multipart_count,
    multipart_etag,
    stored_checksum,
    whole_checksum,
)
from drtransfer.engine.housekeeping import abort_quietly
from drtransfer.engine.messages import OpDone, OpMultipart, OpTask, PartDone, PartTask, UploadRef, Verify
from drtransfer.engine.multipart import create_upload, own_parts, source_parts, stored_headers, target_metadata
from drtransfer.engine.runtime import SOURCE_DIGEST_REFUSED, Meter, Runtime, TaskError
from drtransfer.engine.strategy import SEQUENTIAL_PARTS_IN_FLIGHT, Strategy, one_get
from drtransfer.operations import CopyObject, ObjectLocation

SEQUENTIAL = "stream-sequential"  # how a STREAM_MULTIPART read in order is reported
# OpMultipart/PartTask ``crc`` of an md5-N source's parts: verified by the target's part ETags, not hashed
PART_ETAGS = "part-etags"


def put_checksum(data: bytes | bytearray) -> dict[str, str]:
    """The checksum parameter of a PUT whose body has no known MD5: CRC32C when a C implementation is
    installed (awscrt, crc32c), else zlib's CRC32; the target refuses a body that does not match."""
    crc32c = crc_function("crc32c")
    if crc32c is not None:
        return {"ChecksumCRC32C": crc_to_b64(crc32c(data, 0))}
    return {"ChecksumCRC32": crc_to_b64(zlib.crc32(data))}


def verify_source_bytes(
    rt: Runtime, source: ObjectLocation, etag: str, data: bytes | bytearray, md5: bytes | None = None
) -> None:
    """Check bytes read from ``source`` against its ETag or stored checksum (``md5``: of ``data``, if
    already computed)."""
    if is_plain_md5(etag):
        if (md5 or hashlib.md5(data).digest()).hex() != etag:
            raise rt.mismatch(source, f"the bytes read do not match the source ETag {etag}")
        return
    count = multipart_count(etag)
    if count:
        parts = source_parts(rt, source, len(data), count)
        got = multipart_etag(hashlib.md5(data[p.start : p.end]).digest() for p in parts)
        if got != etag:
            raise rt.mismatch(source, f"the bytes read do not match the source ETag {etag}")
        return
    stored = stored_checksum(rt.source_head(source, ChecksumMode="ENABLED"))
    if stored:
        value = whole_checksum(stored[0], data)
        if value is not None and value != stored[1]:
            raise rt.mismatch(source, f"the bytes read do not match the source's {stored[0]} checksum")
    # else: no content checksum exists for this source; its size was checked while reading


def stream_small(rt: Runtime, task: OpTask, op: CopyObject, meter: Meter) -> OpDone:
    """One GET, then one PUT the target verifies.

    A plain-MD5 source ETag is sent as the PUT's Content-MD5: the target refuses (``BadDigest``) bytes that
    differ from the source's, whether the GET or the PUT changed them, so no byte is hashed here. Any other
    source is checked here (part MD5s of an ``md5-N`` ETag, a stored checksum) and its PUT carries a CRC
    computed in C (:func:`put_checksum`), which the target checks.
    """
    source, target = op.source.location, op.target
    path = rt.lean(source.endpoint, target.endpoint)
    if path is not None and is_plain_md5(op.source.etag):
        with lean.falling_back(meter):
            return lean.copy_small(path, task, op, meter)
    response = rt.call(source.endpoint, source.bucket, f"read {source.url}", "get_object", Key=source.key)
    etag = clean_etag(response.get("ETag"))
    data = rt.read_body(response, int(response["ContentLength"]), meter, source)
    trusted = is_plain_md5(etag)
    try:
        if trusted:
            check: dict[str, str] = {"ContentMD5": content_md5(bytes.fromhex(etag))}
        else:
            verify_source_bytes(rt, source, etag, data)
            check = put_checksum(data)
        try:
            answer = rt.call(
                target.endpoint, target.bucket, f"write {target.url}", "put_object", Key=target.key, Body=data,
                ContentType=response.get("ContentType") or "binary/octet-stream",
                Metadata=target_metadata(response, etag), **stored_headers(response), source_digest=trusted,
                **check,
            )  # fmt: skip
        except TaskError as error:
            if error.code == SOURCE_DIGEST_REFUSED:
                raise rt.refused_source(source, etag) from None
            raise
    finally:
        rt.buffers.give(data)
    if trusted:
        rt.check_written(target, answer.get("ETag"), etag)
    return OpDone(task.task_id, "copied", len(data), Strategy.STREAM.value, clean_etag(answer.get("ETag")))


def start_stream(rt: Runtime, task: OpTask, op: CopyObject, meter: Meter) -> OpDone | OpMultipart:
    """A large cross-endpoint copy: parts the scheduler fans out when the source's checksum can be checked
    part by part (its ``md5-N`` ETag, a stored CRC32/CRC32C) or not at all, else a sequential stream."""
    source = op.source.location
    listed = clean_etag(op.source.etag)
    if (multipart_count(listed) or 0) > 1 and op.source.size > rt.settings.multipart_threshold:
        path = rt.lean(source.endpoint, op.target.endpoint)
        if path is not None and one_get(op, rt.settings):
            with lean.falling_back(meter):
                return lean.copy_multipart(path, task, op, meter)  # one GET, no HEAD
        # One HEAD instead of two: part 1's HEAD carries the object's ETag, type and metadata, and the
        # listing its size; an object changed since the listing shows another ETag and is looked at again.
        first = rt.source_head(source, PartNumber=1)
        if clean_etag(first.get("ETag")) == listed:
            parts = source_parts(rt, source, op.source.size, multipart_count(listed) or 0, int(first["ContentLength"]))
            upload = create_upload(rt, task.task_id, op.target, first, listed)
            verify = Verify("md5-parts", listed, op.source.size)
            return OpMultipart(
                task.task_id, upload, parts, verify, Strategy.STREAM_MULTIPART.value, copy=False, crc=PART_ETAGS
            )
    head = rt.source_head(source, ChecksumMode="ENABLED")
    size, etag = int(head["ContentLength"]), clean_etag(head.get("ETag"))
    if size <= rt.settings.multipart_threshold:  # the source shrank since it was listed
        return stream_small(rt, task, op, meter)
    count = multipart_count(etag)
    stored = stored_checksum(head)
    crc: str | None = None
    if count:
        parts, verify = source_parts(rt, source, size, count), Verify("md5-parts", etag, size)
        crc = PART_ETAGS
    elif stored and stored[0] in ("crc32", "crc32c") and crc_function(stored[0]):
        crc = stored[0]
        parts, verify = own_parts(size, rt.settings.part_size), Verify(stored[0], stored[1], size)  # type: ignore[arg-type]
    elif is_plain_md5(etag) or (stored and whole_checksum(stored[0], b"") is not None):
        return sequential(rt, task, op, head, etag, stored, meter)
    else:
        parts, verify = own_parts(size, rt.settings.part_size), Verify("size", "", size)
    upload = create_upload(rt, task.task_id, op.target, head, etag)
    return OpMultipart(task.task_id, upload, parts, verify, Strategy.STREAM_MULTIPART.value, copy=False, crc=crc)


def stream_part(rt: Runtime, task: PartTask, meter: Meter) -> PartDone:
    """One part of a multipart stream: ranged GET, then UploadPart.

    Parts of an ``md5-N`` source (``task.crc`` is :data:`PART_ETAGS`) are not hashed here: the target's
    part ETag is the MD5 of what it stored, and the scheduler completes the upload only when those ETags
    combine to the source's ETag. A target whose part ETags are not MD5s gets them computed here instead.
    Other parts carry a client Content-MD5 (and the CRC the scheduler combines, when asked).
    """
    source, upload, part = task.source, task.upload, task.part
    by_etag = task.crc == PART_ETAGS
    path = rt.lean(source.endpoint, upload.endpoint)
    if by_etag and path is not None:
        with lean.falling_back(meter):
            return lean.copy_part(path, task, meter)
    response = rt.call(
        source.endpoint, source.bucket, f"read {source.url}", "get_object", Key=source.key,
        Range=f"bytes={part.start}-{part.end - 1}",
    )  # fmt: skip
    data = rt.read_body(response, part.size, meter, source)
    try:
        digest = None if by_etag else hashlib.md5(data).digest()
        crc_of = crc_function(task.crc) if task.crc and not by_etag else None
        crc = crc_of(data, 0) if crc_of else None
        answer = rt.call(
            upload.endpoint, upload.bucket, f"upload part {part.number} of s3://{upload.bucket}/{upload.key}",
            "upload_part", Key=upload.key, UploadId=upload.upload_id, PartNumber=part.number, Body=data,
            **({} if digest is None else {"ContentMD5": content_md5(digest)}),  # type: ignore[arg-type]
        )  # fmt: skip
        etag = clean_etag(answer.get("ETag"))
        if digest is None:
            digest = bytes.fromhex(etag) if is_plain_md5(etag) else hashlib.md5(data).digest()
    finally:
        rt.buffers.give(data)
    if is_plain_md5(etag) and etag != digest.hex():
        raise TaskError(f"The target stored part {part.number} of s3://{upload.bucket}/{upload.key} wrongly.")
    return PartDone(task.task_id, part.number, etag, digest, crc, part.size)


def sequential(
    rt: Runtime,
    task: OpTask,
    op: CopyObject,
    head: Mapping[str, Any],
    etag: str,
    stored: tuple[str, str] | None,
    meter: Meter,
) -> OpDone:
    """One GET read in order (so the whole-object MD5/SHA can be checked) feeding parallel UploadParts;
    completed only when the whole digest matches."""
    source, target = op.source.location, op.target
    size = int(head["ContentLength"])
    if is_plain_md5(etag):
        whole: Any = hashlib.md5()
        expected, label = etag, "ETag"
    else:
        assert stored is not None
        whole = hashlib.sha256() if stored[0] == "sha256" else hashlib.new(stored[0])
        expected, label = stored[1], stored[0]
    upload = create_upload(rt, task.task_id, target, head, etag)
    try:
        parts = _sequential_parts(rt, upload, source, size, whole, meter)
        got = whole.hexdigest() if label == "ETag" else base64.b64encode(whole.digest()).decode("ascii")
        if got != expected:
            raise rt.mismatch(source, f"the bytes read do not match the source {label}")
        answer = rt.call(
            target.endpoint, target.bucket, f"complete the upload of {target.url}", "complete_multipart_upload",
            Key=target.key, UploadId=upload.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e, _ in parts]},
        )  # fmt: skip
        final, sent = clean_etag(answer.get("ETag")), multipart_etag(digest for _, _, digest in parts)
        if multipart_count(final) and final != sent:
            rt.quietly(target.endpoint, target.bucket, "delete_object", Key=target.key)
            raise TaskError(f"The target reported ETag {final} for {target.url} instead of {sent}.")
    except BaseException:
        abort_quietly(rt, upload)
        raise
    return OpDone(task.task_id, "copied", size, SEQUENTIAL, final, upload)


def _sequential_parts(
    rt: Runtime, upload: UploadRef, source: ObjectLocation, size: int, whole: Any, meter: Meter
) -> list[tuple[int, str, bytes]]:
    response = rt.call(source.endpoint, source.bucket, f"read {source.url}", "get_object", Key=source.key)
    body = response["Body"]
    slots = threading.BoundedSemaphore(min(SEQUENTIAL_PARTS_IN_FLIGHT, rt.settings.concurrency))
    futures: list[Future[tuple[int, str, bytes]]] = []
    layout = own_parts(size, rt.settings.part_size)
    where = rt.current_task()

    def send(number: int, data: bytearray) -> tuple[int, str, bytes]:
        rt.working_on(where)  # a helper thread: its retries count for this task's operation
        try:
            digest = hashlib.md5(data).digest()
            answer = rt.call(
                upload.endpoint, upload.bucket, f"upload part {number} of s3://{upload.bucket}/{upload.key}",
                "upload_part", Key=upload.key, UploadId=upload.upload_id, PartNumber=number, Body=data,
                ContentMD5=content_md5(digest),
            )  # fmt: skip
            return number, clean_etag(answer.get("ETag")), digest
        finally:
            rt.buffers.give(data)
            slots.release()

    direct = direct_reader(body)
    read_into = direct.readinto if direct is not None else body.readinto
    try:
        for part in layout:
            data = rt.buffers.take(part.size)  # read in place: no chunk list, no join
            view = memoryview(data)
            got = 0
            try:
                while got < part.size:
                    rt.check_cancel()
                    count = read_into(view[got : min(part.size, got + rt.read_step)])
                    if not count:
                        raise TaskError(f"Reading {source.url} on the {rt.describe(source)} ended early.")
                    rt.pace(count)
                    got += count
                    meter.add(count)
            except READ_ERRORS as error:
                error = as_botocore_error(error, source.url) if direct is not None else error
                raise rt.error(error, source.endpoint, source.bucket, f"read {source.url}") from None
            finally:
                view.release()
            whole.update(data)
            slots.acquire()
            futures.append(rt.helpers().submit(send, part.number, data))
            for future in futures:  # fail fast when a part upload already failed
                if future.done() and future.exception():
                    future.result()
        if direct is not None and direct.isclosed():  # read to its end: the connection can be reused
            body._raw_stream.release_conn()
        return [future.result() for future in futures]
    finally:
        body.close()
        for future in futures:
            future.cancel()
