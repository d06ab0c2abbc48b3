"""``--bandwidth-limit``: a cap on the bytes per second a run writes to its targets.

Each worker process paces its own share of the run's limit (``EngineSettings.process_bandwidth``: the
limit divided by the worker processes) with s3transfer's thread-safe ``LeakyBucket``, the limiter boto3's
and awscli's ``max_bandwidth`` use: every thread asks it for the bytes of its next chunk before sending
them and sleeps as long as the bucket says. Server-side copies move no byte through the client and are
not paced.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from s3transfer.bandwidth import LeakyBucket, RequestExceededException, RequestToken

KiB = 1024
MAX_CHUNK = 256 * KiB  # bytes per paced send: small enough for a smooth rate, large enough for few calls
MIN_CHUNK = 16 * KiB
# awscli's max_bandwidth units: KB and KiB are both 1024 bytes (and so on up)
_UNITS = {"": 1, "B": 1, "K": KiB, "M": KiB**2, "G": KiB**3, "T": KiB**4}
_RATE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])(?:I?B)?|(B))?(?:/S)?")


def parse_rate(text: str) -> int:
    """Bytes per second from ``20MB/s``, ``20MB``, ``500KB/s``, ``1.5MiB/s`` or ``1048576``; KB and KiB
    are both 1024 bytes, as in awscli's ``max_bandwidth``. A ValueError says what is wrong."""
    match = _RATE.fullmatch(text.strip().upper())
    if match is None:
        raise ValueError(f"{text!r} is not a rate; write e.g. 20MB/s, 500KB/s or 1048576 (bytes per second)")
    rate = int(float(match.group(1)) * _UNITS[match.group(2) or ""])
    if rate <= 0:
        raise ValueError(f"{text!r} must be more than 0 bytes per second")
    return rate


class Throttle:
    """One process's pace: :meth:`take` returns once ``count`` more bytes fit in ``rate`` bytes per second
    across all the process's threads. ``sleep`` waits (the runtime's: it raises to cancel)."""

    def __init__(self, rate: int, threads: int, sleep: Callable[[float], None]) -> None:
        self.rate = rate
        # Each of the process's threads gets a chunk about every threads x chunk / rate seconds: keep that
        # under ~1/4 s, so no request goes silent for long (S3 drops a body idle for ~20 s).
        self.chunk = max(MIN_CHUNK, min(MAX_CHUNK, rate // (4 * max(1, threads))))
        self._bucket = LeakyBucket(rate)
        self._sleep = sleep

    def take(self, count: int) -> None:
        token = RequestToken()  # one per request: the bucket's schedule knows a retry by it
        while True:
            try:
                self._bucket.consume(count, token)
                return
            except RequestExceededException as wait:
                self._sleep(wait.retry_time)


def build(rate: int | None, threads: int, sleep: Callable[[float], None]) -> Throttle | None:
    """The process's throttle, or None (no limit: nothing is paced and no limiter exists)."""
    return None if rate is None else Throttle(rate, threads, sleep)


__all__ = ["MAX_CHUNK", "Throttle", "build", "parse_rate"]
