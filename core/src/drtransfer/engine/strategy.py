"""How one operation moves its bytes: the single place that decides server-side copy or stream, one request
or multipart.

Pure: the scheduler asks it whether an operation needs the UploadPartCopy probe and how many bytes its task
buffers; the worker asks it again (with what the attempt knows: a fallback, the probe's answer) and runs the
strategy it names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from drtransfer.endpoints import Endpoint
from drtransfer.engine.checksums import clean_etag, multipart_count
from drtransfer.engine.messages import PartSpec
from drtransfer.engine.settings import MAX_SINGLE_COPY, MIN_PART, EngineSettings, MiB
from drtransfer.operations import CopyObject, DeleteObject, Operation, PutBytes

# Parts a sequential stream uploads at once while it reads the next one (memory: this + 1 parts).
SEQUENTIAL_PARTS_IN_FLIGHT = 4
# md5-N sources up to this size and part count are read with one GET on the lean data path
# (lean.copy_multipart); larger ones keep parallel ranged GETs per part, faster for one 1 GiB object.
WHOLE_GET_PARTS = 16
WHOLE_GET_BYTES = 128 * MiB


class Strategy(enum.Enum):
    """The value is the strategy as reported in :class:`~drtransfer.operations.OperationResult`.

    ``STREAM_MULTIPART`` is reported as ``stream-sequential`` when the source's checksum can only be checked
    by reading it in order (a plain-MD5 ETag or a stored SHA): the worker finds that out from its HEAD.
    """

    COPY_OBJECT = "copy-object"  # same store: one server-side CopyObject
    UPLOAD_PART_COPY = "upload-part-copy"  # same store, large: server-side UploadPartCopy parts
    STREAM = "stream"  # one GET, then one PUT
    STREAM_MULTIPART = "stream-multipart"  # ranged GETs feeding UploadParts
    PUT = "put"  # PutBytes: one PUT of bytes the plan holds
    DELETE = "delete"  # DeleteObject


def choose_strategy(
    operation: Operation,
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    *,
    server_copy: bool = True,
    part_copy_works: bool | None = None,
) -> Strategy:
    """The strategy of ``operation``.

    A copy between endpoints of the same store (same URL, region and credentials) is server-side: CopyObject
    up to ``copy_threshold`` (and S3's 5 GiB limit), UploadPartCopy above. Any other copy is streamed: one
    GET and PUT up to ``multipart_threshold``, multipart above.

    server_copy: False when this attempt must stream (an earlier server-side copy could not be verified).
    part_copy_works: what the UploadPartCopy probe of the target bucket found; False streams the copies
        that would use it. None: not probed (yet, or a dry run): UploadPartCopy, which the scheduler probes
        before the first such copy of a bucket.
    """
    if isinstance(operation, PutBytes):
        return Strategy.PUT
    if isinstance(operation, DeleteObject):
        return Strategy.DELETE
    return _copy_strategy(operation, endpoints, settings, server_copy, part_copy_works)


def _copy_strategy(
    op: CopyObject,
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    server_copy: bool,
    part_copy_works: bool | None,
) -> Strategy:
    size = op.source.size
    same = server_copy and endpoints[op.source.location.endpoint].same_store(endpoints[op.target.endpoint])
    if same and size <= min(settings.copy_threshold, MAX_SINGLE_COPY):
        return Strategy.COPY_OBJECT
    if same and part_copy_works is not False:
        return Strategy.UPLOAD_PART_COPY
    if size <= settings.multipart_threshold:
        return Strategy.STREAM
    return Strategy.STREAM_MULTIPART


def buffered_bytes(strategy: Strategy, operation: Operation, settings: EngineSettings) -> int:
    """The most bytes the task that starts ``operation`` with ``strategy`` holds in a worker's memory (the
    parts of a parallel multipart stream are accounted as their own tasks)."""
    if strategy is Strategy.PUT:
        return operation.size
    if strategy is Strategy.STREAM:
        return operation.size
    if strategy is Strategy.STREAM_MULTIPART:
        if settings.data_path == "lean" and isinstance(operation, CopyObject) and one_get(operation, settings):
            return 0  # spliced from socket to socket (TLS: one reused 1 MiB buffer per thread)
        return (SEQUENTIAL_PARTS_IN_FLIGHT + 1) * settings.part_size  # a sequential stream at most
    return 0  # server-side copies and deletes move no bytes through the worker


def guess_layout(size: int, count: int, part_size: int) -> tuple[PartSpec, ...] | None:
    """The part layout of an ``md5-N`` source of ``size`` bytes in ``count`` parts, guessed without a HEAD:
    equal parts of the engine's part size, else of the smallest whole MiB that gives ``count`` parts (how
    S3 clients cut uploads). A wrong guess cannot pass: its part ETags do not combine to the source's."""
    if count == 1:
        return (PartSpec(1, 0, size),)
    for first in (part_size, *(n * MiB for n in range(MIN_PART // MiB, WHOLE_GET_BYTES // MiB + 1))):
        if first >= MIN_PART and (count - 1) * first < size <= count * first:
            return tuple(PartSpec(n + 1, n * first, min((n + 1) * first, size)) for n in range(count))
    return None


def one_get(op: CopyObject, settings: EngineSettings) -> bool:
    """True when the lean data path copies ``op``'s ``md5-N`` source with one GET (lean.copy_multipart)."""
    size, count = op.source.size, multipart_count(clean_etag(op.source.etag)) or 0
    return (
        1 < count <= WHOLE_GET_PARTS
        and settings.multipart_threshold < size <= WHOLE_GET_BYTES
        and guess_layout(size, count, settings.part_size) is not None
    )


__all__ = [
    "SEQUENTIAL_PARTS_IN_FLIGHT", "WHOLE_GET_BYTES", "WHOLE_GET_PARTS", "Strategy", "buffered_bytes",
    "choose_strategy", "guess_layout", "one_get",
]  # fmt: skip
