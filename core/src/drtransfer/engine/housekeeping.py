"""Everything around the copies: listing a model's target root before it starts (and sweeping multipart
uploads an earlier run left there), the audit listing after it, aborting uploads and removing objects.

:func:`clean_up` is the contract with the scheduler for the end of a failed or interrupted run: it runs in
the scheduler's process, with its own short-lived clients, once the executor has stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drtransfer.endpoints import Endpoint, list_pages
from drtransfer.engine.checksums import clean_etag
from drtransfer.engine.messages import (
    AbortDone,
    AbortTask,
    AuditDone,
    AuditTask,
    PrepareDone,
    PrepareTask,
    RemoveDone,
    RemoveTask,
    TargetState,
    UploadRef,
)
from drtransfer.engine.runtime import NOT_FOUND, Runtime, TaskError
from drtransfer.engine.settings import EngineSettings
from drtransfer.operations import ObjectLocation

LISTING_LIMIT = 10_000  # above this many keys under a root, HEAD each target instead


# ---- tasks ---------------------------------------------------------------------------------------


def prepare(rt: Runtime, task: PrepareTask) -> PrepareDone:
    if task.fresh:  # a new, possibly write-only root: every target is known to be absent
        return PrepareDone(task.task_id, (), 0, None)
    roots = (task.root,) if task.sweep is None else task.sweep
    swept, note = 0, None
    if roots:
        try:
            swept = sweep_roots(rt, roots, dry_run=task.dry_run)
        except TaskError as error:  # some servers cannot list uploads (rclone before the first one)
            where = ", ".join(root.url for root in roots)
            note = f"Could not look for unfinished multipart uploads under {where}: {error.sentence}"
    if task.listed:  # the scheduler has the plan's listing
        return PrepareDone(task.task_id, (), swept, note)
    listing = list_keys(rt, task.root, task.keys, LISTING_LIMIT)
    return PrepareDone(task.task_id, None if listing is None else tuple(listing), swept, note)


def audit_listing(rt: Runtime, task: AuditTask) -> AuditDone:
    root = task.root
    found: list[tuple[ObjectLocation, TargetState]] = []
    if task.keys:
        for key, size, etag in list_keys(rt, root, task.keys, None) or []:
            found.append((ObjectLocation(root.endpoint, root.bucket, key), TargetState(size, etag)))
    for location in task.others:
        head = rt.head_target(location)
        if head is not None:
            found.append((location, TargetState(int(head["ContentLength"]), clean_etag(head.get("ETag")))))
    return AuditDone(task.task_id, tuple(found))


def remove(rt: Runtime, task: RemoveTask) -> RemoveDone:
    for target in task.targets:
        remove_object(rt, target)
    return RemoveDone(task.task_id)


def abort(rt: Runtime, task: AbortTask) -> AbortDone:
    try:
        abort_upload(rt, task.upload)
    except TaskError as error:
        return AbortDone(task.task_id, False, error.sentence)
    return AbortDone(task.task_id, True, None)


# ---- requests ------------------------------------------------------------------------------------


def list_keys(
    rt: Runtime, root: ObjectLocation, keys: frozenset[str], limit: int | None
) -> list[tuple[str, int, str]] | None:
    """(key, size, ETag) of every object under ``root`` whose key is in ``keys``; None when there are
    more than ``limit`` objects under ``root``."""
    listing: list[tuple[str, int, str]] = []
    seen = 0
    list_objects = functools.partial(rt.call, root.endpoint, root.bucket, f"list {root.url}", "list_objects_v2")
    for page in list_pages(list_objects, Prefix=root.key):
        for item in page.get("Contents", []):
            seen += 1
            if item["Key"] in keys:
                listing.append((item["Key"], int(item["Size"]), clean_etag(item.get("ETag"))))
        if limit is not None and seen > limit:
            return None
    return listing


def sweep_roots(rt: Runtime, roots: Sequence[ObjectLocation], *, dry_run: bool) -> int:
    """Abort every multipart upload under any of ``roots`` (all in one bucket of one endpoint) with one
    listing of their common prefix; uploads beside them under that prefix are left alone. Count them."""
    first = roots[0]
    assert all((r.endpoint, r.bucket) == (first.endpoint, first.bucket) for r in roots)
    prefix = os.path.commonprefix([r.key for r in roots])  # noqa: RUF071 (keys, not paths: by character)
    keys = tuple(r.key for r in roots)
    where = f"s3://{first.bucket}/{prefix}"
    count = 0
    kwargs: dict[str, Any] = {"Prefix": prefix}
    for _page in range(1000):
        page = rt.call(
            first.endpoint, first.bucket, f"list unfinished uploads under {where}", "list_multipart_uploads", **kwargs
        )
        for item in page.get("Uploads", []):
            if not item["Key"].startswith(keys):
                continue
            count += 1
            if not dry_run:
                abort_upload(rt, UploadRef(first.endpoint, first.bucket, item["Key"], item["UploadId"]))
        if not page.get("IsTruncated"):
            break
        kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
    return count


def remove_object(rt: Runtime, target: ObjectLocation) -> None:
    """Delete ``target``; an object that is already gone counts as removed."""
    try:
        rt.call(target.endpoint, target.bucket, f"delete {target.url}", "delete_object", Key=target.key)
    except TaskError as error:
        if error.code not in NOT_FOUND:
            raise


def abort_upload(rt: Runtime, upload: UploadRef) -> None:
    """Abort ``upload``; an upload that is already gone counts as aborted."""
    try:
        rt.call(
            upload.endpoint, upload.bucket, f"abort the upload of s3://{upload.bucket}/{upload.key}",
            "abort_multipart_upload", Key=upload.key, UploadId=upload.upload_id,
        )  # fmt: skip
    except TaskError as error:
        if error.code not in ("NoSuchUpload", "404", "NotFound"):
            raise


def abort_quietly(rt: Runtime, upload: UploadRef) -> None:
    """Abort ``upload`` after its copy failed, ignoring a failure to: the scheduler still holds it among the
    open uploads and aborts it at the end of the run."""
    with contextlib.suppress(TaskError):
        abort_upload(rt, upload)


# ---- the end of a failed or interrupted run --------------------------------------------------------


@dataclass(frozen=True)
class Leftovers:
    """What :func:`clean_up` could not do before its deadline, and the last error it saw."""

    uploads: tuple[UploadRef, ...] = ()
    removals: tuple[ObjectLocation, ...] = ()
    error: str = ""


def clean_up(
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    uploads: Sequence[UploadRef],
    roots: Sequence[ObjectLocation],
    removals: Sequence[ObjectLocation],
) -> Leftovers:
    """Abort ``uploads``, sweep every upload under ``roots`` and delete ``removals``, trying again until
    ``settings.abort_timeout`` so a restarting server still gets them. Runs in the calling process."""
    quick = dataclasses.replace(settings, client_max_attempts=1, connect_timeout=3.0, read_timeout=15.0)
    rt = Runtime(endpoints, quick, lambda report: None, threading.Event())
    deadline = time.monotonic() + settings.abort_timeout
    pending_uploads = list(uploads)
    groups: dict[tuple[str, str], list[ObjectLocation]] = {}  # one sweep per (endpoint, bucket)
    for root in dict.fromkeys(roots):
        groups.setdefault((root.endpoint, root.bucket), []).append(root)
    pending_roots = [tuple(group) for group in groups.values()]
    pending_removals = list(dict.fromkeys(removals))
    last_error = ""
    try:
        while pending_uploads or pending_roots or pending_removals:
            still: list[UploadRef] = []
            for upload in pending_uploads:
                try:
                    abort_upload(rt, upload)
                except TaskError as error:
                    last_error = error.sentence
                    if error.retryable:
                        still.append(upload)
            still_roots: list[tuple[ObjectLocation, ...]] = []
            for group in pending_roots:
                try:
                    sweep_roots(rt, group, dry_run=False)
                except TaskError as error:
                    if error.retryable and error.code not in ("NoSuchUpload", "NotImplemented"):
                        last_error = error.sentence
                        still_roots.append(group)
            still_removals: list[ObjectLocation] = []
            for target in pending_removals:
                try:
                    remove_object(rt, target)
                except TaskError as error:
                    last_error = error.sentence
                    if error.retryable:
                        still_removals.append(target)
            pending_uploads, pending_roots, pending_removals = still, still_roots, still_removals
            if not (pending_uploads or pending_roots or pending_removals) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        with contextlib.suppress(Exception):
            rt.close()
    return Leftovers(tuple(pending_uploads), tuple(pending_removals), last_error)
