"""What streamed and server-side multipart copies share in the worker: part layouts, creating an upload and
completing it once the scheduler has verified its parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from s3transfer.utils import ChunksizeAdjuster

from drtransfer.engine.checksums import SOURCE_ETAG_META, clean_etag, multipart_count
from drtransfer.engine.messages import CompleteDone, CompleteTask, PartSpec, UploadRef, UploadStarted
from drtransfer.engine.runtime import Runtime, TaskError
from drtransfer.engine.settings import MAX_PARTS
from drtransfer.operations import ObjectLocation


def own_parts(size: int, part_size: int) -> tuple[PartSpec, ...]:
    """Parts of ``part_size``, the last one shorter; s3transfer's adjuster keeps them within S3's limits
    (doubled until there are at most 10,000, each 5 MiB to 5 GiB), as boto3's own transfers do."""
    size_per = ChunksizeAdjuster(max_parts=MAX_PARTS).adjust_chunksize(part_size, size)
    return tuple(
        PartSpec(number, start, min(start + size_per, size))
        for number, start in enumerate(range(0, max(size, 1), size_per), start=1)
    )


def source_parts(
    rt: Runtime, source: ObjectLocation, size: int, count: int, first: int | None = None
) -> tuple[PartSpec, ...]:
    """The part layout of a multipart source (``md5-N``), so our parts' MD5s combine to its ETag
    (``first``: the size of part 1, when a ``HeadObject PartNumber=1`` already told)."""
    if count == 1:
        return (PartSpec(1, 0, size),)
    if first is None:
        first = int(rt.source_head(source, PartNumber=1)["ContentLength"])
    if first > 0 and (count - 1) * first < size <= count * first:
        return tuple(PartSpec(n + 1, n * first, min((n + 1) * first, size)) for n in range(count))
    sizes = [int(rt.source_head(source, PartNumber=n)["ContentLength"]) for n in range(1, count + 1)]
    if sum(sizes) != size:
        raise TaskError(
            f"The {rt.describe(source)} does not report the part layout of {source.url}; "
            f"its multipart ETag cannot be verified.",
            retryable=False,
        )
    parts, start = [], 0
    for number, length in enumerate(sizes, start=1):
        parts.append(PartSpec(number, start, start + length))
        start += length
    return tuple(parts)


# The standard headers S3 stores with an object besides its type: botocore's name (in a HEAD or GET answer,
# and as a PutObject or CreateMultipartUpload parameter) and the HTTP header's. A CopyObject with the COPY
# directive keeps them by itself; every other copy sends them.
STORED_HEADERS = {
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
}


def stored_headers(response: Mapping[str, Any]) -> dict[str, Any]:
    """The source's :data:`STORED_HEADERS` in ``response`` (a HEAD or GET answer), as parameters. A
    Content-Encoding of ``aws-chunked`` describes how a body was sent, not the object (S3 does not store
    it), and is dropped should a server echo it."""
    found: dict[str, Any] = {name: str(response[name]) for name in STORED_HEADERS if response.get(name)}
    if "ContentEncoding" in found:
        codings = [c.strip() for c in found["ContentEncoding"].split(",") if c.strip().lower() != "aws-chunked"]
        if codings:
            found["ContentEncoding"] = ", ".join(codings)
        else:
            del found["ContentEncoding"]
    return found


def target_metadata(response: Mapping[str, Any], source_etag: str) -> dict[str, str]:
    """The source's user metadata plus the source ETag, for a streamed or part-copied target."""
    metadata = {
        key: value for key, value in (response.get("Metadata") or {}).items() if key.lower() != SOURCE_ETAG_META
    }
    metadata[SOURCE_ETAG_META] = source_etag
    return metadata


def create_upload(rt: Runtime, task_id: int, target: ObjectLocation, head: Mapping[str, Any], etag: str) -> UploadRef:
    """CreateMultipartUpload, reported at once (:class:`UploadStarted`) so an interrupt can abort it."""
    answer = rt.call(
        target.endpoint, target.bucket, f"start the upload of {target.url}", "create_multipart_upload",
        Key=target.key, ContentType=head.get("ContentType") or "binary/octet-stream",
        Metadata=target_metadata(head, etag), **stored_headers(head),
    )  # fmt: skip
    upload = UploadRef(target.endpoint, target.bucket, target.key, answer["UploadId"])
    rt.emit(UploadStarted(task_id, upload))
    return upload


def complete(rt: Runtime, task: CompleteTask) -> CompleteDone:
    upload = task.upload
    url = f"s3://{upload.bucket}/{upload.key}"
    action = f"complete the upload of {url}"
    if task.expected_sizes is not None:
        check_part_sizes(rt, task)
    try:
        answer = rt.call(
            upload.endpoint, upload.bucket, action, "complete_multipart_upload", Key=upload.key,
            UploadId=upload.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in task.parts]},
        )  # fmt: skip
        etag = clean_etag(answer.get("ETag"))
    except TaskError as error:
        if error.code != "NoSuchUpload":
            raise
        # An earlier Complete may have succeeded before its answer was lost: look at the target.
        head = rt.head_target(ObjectLocation(upload.endpoint, upload.bucket, upload.key))
        if head is None or int(head["ContentLength"]) != task.size:
            raise
        etag = clean_etag(head.get("ETag"))
    if task.expected_etag and multipart_count(etag) and etag != task.expected_etag:
        rt.quietly(upload.endpoint, upload.bucket, "delete_object", Key=upload.key)
        raise TaskError(f"The target reported ETag {etag} for {url} instead of {task.expected_etag}.")
    return CompleteDone(task.task_id, etag)


def check_part_sizes(rt: Runtime, task: CompleteTask) -> None:
    """Server-side part copies whose ETags prove nothing (SeaweedFS): ListParts must show the sizes."""
    upload = task.upload
    sizes: dict[int, int] = {}
    kwargs: dict[str, Any] = {"Key": upload.key, "UploadId": upload.upload_id}
    for _page in range(MAX_PARTS // 1000 + 1):
        page = rt.call(upload.endpoint, upload.bucket, f"list the parts of s3://{upload.bucket}/{upload.key}",
                       "list_parts", **kwargs)  # fmt: skip
        sizes.update({int(p["PartNumber"]): int(p["Size"]) for p in page.get("Parts", [])})
        if not page.get("IsTruncated"):
            break
        kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]
    expected = task.expected_sizes or ()
    if [sizes.get(n) for n, _ in task.parts] != list(expected):
        raise TaskError(
            f"The server stored parts of the wrong size for s3://{upload.bucket}/{upload.key} "
            f"(UploadPartCopy is broken there); copying through the client instead.",
            fallback=True,
        )
