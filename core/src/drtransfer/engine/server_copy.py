"""Server-side copies within one store: CopyObject, UploadPartCopy parts, and the probe that proves
UploadPartCopy really copies bytes on a bucket before the engine relies on it."""

from __future__ import annotations

import os
import uuid

from drtransfer.engine import lean
from drtransfer.engine.checksums import clean_etag, is_plain_md5, multipart_count
from drtransfer.engine.messages import (
    OpDone,
    OpMultipart,
    OpTask,
    PartDone,
    PartSpec,
    PartTask,
    ProbeDone,
    ProbeTask,
    Verify,
)
from drtransfer.engine.multipart import create_upload, own_parts, source_parts
from drtransfer.engine.runtime import Meter, Runtime, TaskError
from drtransfer.engine.settings import MAX_SINGLE_COPY, MIN_PART, MiB
from drtransfer.engine.strategy import Strategy
from drtransfer.operations import CopyObject

PART_COPY_MIN_PART = 256 * MiB  # own parts of a source whose ETag gives no layout: few large requests


def copy_object(rt: Runtime, task: OpTask, op: CopyObject, meter: Meter) -> OpDone:
    """One CopyObject (through the lean data path's connections when it can reach the store, as botocore's
    request costs about ten times the CPU), checked against the source's ETag."""
    source, target = op.source.location, op.target
    action = f"copy {source.url} to {target.url}"
    answered: str | None = None
    path = rt.lean(target.endpoint)
    if path is not None:
        with lean.falling_back(meter):  # a redirect: botocore follows it
            answered = lean.server_copy(path, source, target, action, meter)
    if answered is None:
        answer = rt.call(
            target.endpoint, target.bucket, action, "copy_object", Key=target.key,
            CopySource={"Bucket": source.bucket, "Key": source.key}, MetadataDirective="COPY",
        )  # fmt: skip
        answered = answer.get("CopyObjectResult", {}).get("ETag")
    etag = clean_etag(answered)
    expected = clean_etag(op.source.etag)
    if etag != expected:
        head = rt.head_target(target)
        if head is None or int(head["ContentLength"]) != op.source.size:
            raise rt.mismatch(target, "the server-side copy has the wrong size", fallback=True)
        if not multipart_count(expected):  # only a multipart source may come back re-hashed
            raise rt.mismatch(target, f"the copy's ETag {etag} differs from the source's {expected}", True)
        etag = clean_etag(head.get("ETag"))
    meter.add(op.source.size)
    return OpDone(task.task_id, "copied", op.source.size, Strategy.COPY_OBJECT.value, etag)


def start_part_copy(rt: Runtime, task: OpTask, op: CopyObject) -> OpMultipart:
    """Create the upload and lay out its parts; the scheduler sends them out as :class:`PartTask`\\ s."""
    source = op.source.location
    head = rt.source_head(source)
    size, etag = int(head["ContentLength"]), clean_etag(head.get("ETag"))
    count = multipart_count(etag)
    if count:
        parts, expected = source_parts(rt, source, size, count), etag
    elif is_plain_md5(etag) and size <= MAX_SINGLE_COPY:
        parts, expected = (PartSpec(1, 0, size),), etag  # one part: its ETag is the source MD5
    else:
        parts, expected = own_parts(size, max(rt.settings.part_size, PART_COPY_MIN_PART)), ""
    upload = create_upload(rt, task.task_id, op.target, head, etag)
    verify = Verify("copy-parts", expected, size)
    return OpMultipart(task.task_id, upload, parts, verify, Strategy.UPLOAD_PART_COPY.value, copy=True, crc=None)


def copy_part(rt: Runtime, task: PartTask, meter: Meter) -> PartDone:
    source, upload, part = task.source, task.upload, task.part
    answer = rt.call(
        upload.endpoint, upload.bucket, f"copy part {part.number} of {source.url}", "upload_part_copy",
        Key=upload.key, UploadId=upload.upload_id, PartNumber=part.number,
        CopySource={"Bucket": source.bucket, "Key": source.key},
        CopySourceRange=f"bytes={part.start}-{part.end - 1}",
    )  # fmt: skip
    etag = clean_etag(answer.get("CopyPartResult", {}).get("ETag"))
    if not etag:
        raise TaskError(f"UploadPartCopy of {source.url} answered without an ETag.", fallback=True)
    meter.add(part.size)
    return PartDone(task.task_id, part.number, etag, None, None, part.size)


def probe(rt: Runtime, task: ProbeTask) -> ProbeDone:
    """Copy a probe object with two UploadPartCopy parts and read it back (rclone serve s3 answers
    200 and stores empty parts; others answer NotImplemented)."""
    ep, bucket = task.endpoint, task.bucket
    name = f"{task.prefix}.drtransfer-probe-{uuid.uuid4().hex}"
    data = os.urandom(MIN_PART + 1024)
    where = f"probe UploadPartCopy under s3://{bucket}/{task.prefix}"
    rt.call(ep, bucket, where, "put_object", Key=name + "-src", Body=data)
    upload_id: str | None = None
    try:
        upload_id = rt.call(ep, bucket, where, "create_multipart_upload", Key=name + "-dst")["UploadId"]
        parts = []
        for number, (start, end) in enumerate(((0, MIN_PART), (MIN_PART, len(data))), start=1):
            answer = rt.call(
                ep, bucket, where, "upload_part_copy", Key=name + "-dst", UploadId=upload_id,
                PartNumber=number, CopySource={"Bucket": bucket, "Key": name + "-src"},
                CopySourceRange=f"bytes={start}-{end - 1}",
            )  # fmt: skip
            etag = answer.get("CopyPartResult", {}).get("ETag")
            if not etag:
                return ProbeDone(task.task_id, False, "UploadPartCopy answered without an ETag")
            parts.append({"PartNumber": number, "ETag": etag})
        rt.call(
            ep, bucket, where, "complete_multipart_upload", Key=name + "-dst", UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )  # fmt: skip
        upload_id = None
        got = rt.call(ep, bucket, where, "get_object", Key=name + "-dst")["Body"].read()
        if got != data:
            return ProbeDone(task.task_id, False, f"UploadPartCopy stored {len(got)} wrong bytes")
        return ProbeDone(task.task_id, True, "UploadPartCopy works")
    except TaskError as error:
        return ProbeDone(task.task_id, False, error.sentence)
    finally:
        if upload_id:
            rt.quietly(ep, bucket, "abort_multipart_upload", Key=name + "-dst", UploadId=upload_id)
        for suffix in ("-src", "-dst"):
            rt.quietly(ep, bucket, "delete_object", Key=name + suffix)
