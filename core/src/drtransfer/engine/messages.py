"""The small frozen messages that cross between the scheduler (parent) and the workers.

Tasks go parent -> worker, reports go worker -> parent. All are plain picklable data: no client, no
secret (endpoints travel once, at worker start-up, as picklable :class:`~drtransfer.endpoints.Endpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drtransfer.operations import ObjectLocation, Operation

# ---- shared pieces ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadRef:
    """A multipart upload the engine created."""

    endpoint: str
    bucket: str
    key: str
    upload_id: str


@dataclass(frozen=True)
class PartSpec:
    """Part ``number`` covers source bytes ``[start, end)``."""

    number: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class TargetState:
    """What is at a target key now (from the target listing or a HEAD)."""

    size: int
    etag: str


VerifyKind = Literal["md5-parts", "crc32", "crc32c", "size", "copy-parts"]


@dataclass(frozen=True)
class Verify:
    """How the scheduler checks a multipart transfer before completing it.

    md5-parts: md5 of the part MD5s must equal ``expected`` (the source's ``md5-N`` ETag);
    crc32/crc32c: the combined part CRCs must equal ``expected`` (base64 of the source's stored value);
    size: only the sizes can be checked (source without usable checksum);
    copy-parts: server-side part copies: the part ETags combine to ``expected`` when the server
    reports part MD5s, else the part sizes are checked with ListParts before completing.
    """

    kind: VerifyKind
    expected: str
    size: int


# ---- tasks: parent -> worker ------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareTask:
    """Sweep multipart uploads left under ``root`` (unless ``dry_run``) and list what is there
    (``fresh``: nothing can be there and the root may be unreadable, so neither). ``sweep``: the roots
    whose uploads this task sweeps, with one listing (None: ``root`` alone); ``listed``: the plan gave
    the target listing, so only sweep."""

    task_id: int
    model: int
    root: ObjectLocation
    keys: frozenset[str]
    dry_run: bool
    fresh: bool = False
    sweep: tuple[ObjectLocation, ...] | None = None
    listed: bool = False


@dataclass(frozen=True)
class ProbeTask:
    """Check once that UploadPartCopy really copies bytes on this endpoint and bucket."""

    task_id: int
    endpoint: str
    bucket: str
    prefix: str


@dataclass(frozen=True)
class OpTask:
    """Start one operation: skip check, strategy choice and either the whole transfer or its set-up.
    ``force_stream``: an earlier attempt's server-side copy could not be verified."""

    task_id: int
    model: int
    op_index: int
    op: Operation
    root: ObjectLocation
    target: TargetState | None
    target_known: bool  # False: HEAD the target; True: ``target`` is what the listing saw
    probe_ok: bool | None  # the UploadPartCopy probe's answer; None: not probed (not needed, or a dry run)
    force_stream: bool
    dry_run: bool


@dataclass(frozen=True)
class PartTask:
    """Move one part: ranged GET + UploadPart, or UploadPartCopy when ``copy``."""

    task_id: int
    model: int
    op_index: int
    upload: UploadRef
    source: ObjectLocation
    part: PartSpec
    copy: bool
    crc: str | None  # compute this CRC of the part as well ("crc32"/"crc32c")


@dataclass(frozen=True)
class CompleteTask:
    """Complete a verified multipart upload and check what the target reports."""

    task_id: int
    model: int
    op_index: int
    upload: UploadRef
    parts: tuple[tuple[int, str], ...]  # (part number, ETag)
    expected_etag: str | None
    expected_sizes: tuple[int, ...] | None  # server-side copies: part sizes ListParts must show
    size: int


@dataclass(frozen=True)
class AbortTask:
    task_id: int
    model: int
    op_index: int
    upload: UploadRef


@dataclass(frozen=True)
class RemoveTask:
    """Delete a model's commit objects: stale ones of an earlier, different upload before anything is
    written, or the ones already written when the model's commit fails (an object already gone counts
    as removed)."""

    task_id: int
    model: int
    targets: tuple[ObjectLocation, ...]


@dataclass(frozen=True)
class AuditTask:
    """List ``root`` once after a model's last operation and report what is at ``keys`` (under ``root``)
    and at ``others`` (planned targets outside it, checked with HEAD)."""

    task_id: int
    model: int
    root: ObjectLocation
    keys: frozenset[str]
    others: tuple[ObjectLocation, ...] = ()


Task = PrepareTask | ProbeTask | OpTask | PartTask | CompleteTask | AbortTask | RemoveTask | AuditTask

# ---- reports: worker -> parent ----------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    model: int
    op_index: int
    delta: int


@dataclass(frozen=True)
class ClientRetried:
    """The S3 client (botocore) retried a request of this task ``count`` times on its own before it
    answered; reported so that every retry reaches the subscribers, not only the engine's own."""

    model: int
    op_index: int
    count: int
    action: str  # "write s3://bucket/key" ...
    reasons: tuple[str, ...]  # what each failed attempt got (SlowDown, a reset ...), where botocore said
    endpoint: str = ""  # the endpoint's name


@dataclass(frozen=True)
class UploadStarted:
    """Sent as soon as CreateMultipartUpload answers, so an interrupt can abort it."""

    task_id: int
    upload: UploadRef


@dataclass(frozen=True)
class PrepareDone:
    task_id: int
    listing: tuple[tuple[str, int, str], ...] | None  # (key, size, etag); None: too many, HEAD instead
    swept: int
    note: str | None


@dataclass(frozen=True)
class ProbeDone:
    task_id: int
    works: bool
    detail: str


@dataclass(frozen=True)
class OpDone:
    """An operation finished in one task (small copy, put, delete, skip, dry run, sequential stream)."""

    task_id: int
    status: Literal["copied", "put", "deleted", "skipped", "dry-run"]
    bytes: int
    strategy: str
    etag: str = ""  # the target's ETag after the write, or the one the skip matched
    completed: UploadRef | None = None  # a multipart upload this task created and completed itself
    progress: int = 0  # the task's last bytes moved, not sent as a Progress of their own (one report less)


@dataclass(frozen=True)
class OpMultipart:
    """The worker created ``upload``; the scheduler now fans out ``parts``."""

    task_id: int
    upload: UploadRef
    parts: tuple[PartSpec, ...]
    verify: Verify
    strategy: str
    copy: bool
    crc: str | None


@dataclass(frozen=True)
class PartDone:
    task_id: int
    number: int
    etag: str
    md5: bytes | None
    crc: int | None
    size: int


@dataclass(frozen=True)
class CompleteDone:
    task_id: int
    etag: str = ""  # the completed object's ETag


@dataclass(frozen=True)
class AbortDone:
    task_id: int
    ok: bool
    error: str | None


@dataclass(frozen=True)
class RemoveDone:
    task_id: int


@dataclass(frozen=True)
class AuditDone:
    """The objects found at the audited locations (a location that is absent is not listed)."""

    task_id: int
    found: tuple[tuple[ObjectLocation, TargetState], ...]


@dataclass(frozen=True)
class TaskFailed:
    """A task failed. ``rewind``: progress bytes it had reported; ``fallback``: stream next time;
    ``reason``: a few words when the endpoint named ``endpoint`` is down, silent or throttling ("connection
    refused", "read timeout", "SlowDown"): the scheduler then waits for it up to the stall deadline."""

    task_id: int
    error: str
    retryable: bool
    rewind: int
    fallback: bool = False
    reason: str = ""
    endpoint: str = ""


@dataclass(frozen=True)
class WorkerStopped:
    """A worker thread left its loop (sentinel seen or cancelled)."""

    pid: int


@dataclass(frozen=True)
class WorkersLost:
    """``count`` workers died (killed, out of memory, their node left) and were replaced; the tasks they
    ran will not report. ``task_ids``: those tasks, when the executor knows them (None: any in flight)."""

    count: int
    task_ids: tuple[int, ...] | None = None


Report = (
    Progress
    | ClientRetried
    | UploadStarted
    | PrepareDone
    | ProbeDone
    | OpDone
    | OpMultipart
    | PartDone
    | CompleteDone
    | AbortDone
    | RemoveDone
    | AuditDone
    | TaskFailed
    | WorkerStopped
    | WorkersLost
)
