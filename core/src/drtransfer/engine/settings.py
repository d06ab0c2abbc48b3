"""Engine settings (re-exported as ``drtransfer.engine.EngineSettings``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from drtransfer.endpoints import ClientSettings
from drtransfer.errors import ConfigError

MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_SINGLE_COPY = 5 * GiB  # S3's limit for CopyObject and for one part
MIN_PART = 5 * MiB  # S3's smallest non-last part
MAX_PARTS = 10_000
SMALL_OBJECT = 1 * MiB  # up to this a task is a small request (EngineSettings.small_requests)
DATA_PATHS = ("lean", "botocore")


@dataclass(frozen=True)
class EngineSettings:
    """How the engine runs.

    processes: worker processes (0 = everything in this process, for debugging and tests).
    concurrency: concurrent transfers per process (large objects and their parts; what bounds memory).
    small_requests: concurrent requests per process in all, small ones included (objects up to
        :data:`SMALL_OBJECT`, listings, completes); None = 3 x ``concurrency``. Small requests are
        latency-bound: more of them at once keeps the servers busy (and spares them idle wake-ups).
    part_size: bytes per part of a streamed multipart copy (sources with multipart ETags keep their own
        part layout so their ETag can be checked).
    multipart_threshold: objects above this are streamed cross-endpoint as ranged GETs + UploadParts.
    copy_threshold: same-endpoint objects above this use UploadPartCopy (always above 5 GiB).
    max_attempts: engine attempts per operation and per part after failures that are not an outage
        (a verification failure, an unexpected error ...).
    stall_deadline: seconds an operation (or part) may go without progress while its endpoint is down,
        silent or throttling (connection refused, timeouts, resets, 5xx, SlowDown); it is retried until
        then, and fails with one sentence naming the endpoint after it.
    client_max_attempts: botocore "legacy" retries per request for HTTP answers only (SlowDown, 5xx,
        BadDigest ...); errors with no answer are never retried inside botocore but by the engine,
        which reports each wait (0 = no botocore retry at all).
    connect_timeout, read_timeout: seconds, per request.
    retry_base_delay, retry_max_delay: exponential backoff (with jitter) between engine attempts; the
        cap stays low so a server that is back is seen within seconds.
    abort_timeout: how long to keep trying to abort multipart uploads at the end of a failed or
        interrupted run (the server may be restarting).
    start_method: multiprocessing start method ("spawn", "forkserver", "fork"; None = Python's default).
    dry_run: go through the whole path but swap every write and delete for a "dry-run" result.
    data_path: "lean" moves the bodies of target-verified copies over the engine's own HTTP connections
        (``engine/lean.py``), "botocore" moves every body through botocore.
    bandwidth_limit: bytes per second the whole run may write to its targets (None = unlimited); each
        worker process paces its share (:attr:`process_bandwidth`, see ``engine/throttle.py``).
    """

    processes: int = os.cpu_count() or 1
    concurrency: int = 10
    small_requests: int | None = None
    part_size: int = 8 * MiB
    multipart_threshold: int = 16 * MiB
    copy_threshold: int = 5 * GiB
    max_attempts: int = 5
    stall_deadline: float = 120.0
    client_max_attempts: int = 3
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 4.0
    abort_timeout: float = 30.0
    start_method: str | None = None
    dry_run: bool = False
    data_path: str = "lean"
    bandwidth_limit: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.processes < 0:
            problems.append("processes must be 0 or more")
        if self.concurrency < 1:
            problems.append("concurrency must be at least 1")
        if self.small_requests is not None and self.small_requests < 1:
            problems.append("small requests must be at least 1")
        if not MIN_PART <= self.part_size <= MAX_SINGLE_COPY:
            problems.append("part size must be between 5 MiB and 5 GiB")
        if self.multipart_threshold < 0 or self.copy_threshold < 0:
            problems.append("thresholds must not be negative")
        if self.max_attempts < 1 or self.client_max_attempts < 0:
            problems.append("attempts must be at least 1 (client attempts at least 0)")
        if self.stall_deadline <= 0:
            problems.append("the stall deadline must be more than 0 seconds")
        if self.start_method not in (None, "spawn", "forkserver", "fork"):
            problems.append("start method must be spawn, forkserver or fork")
        if self.data_path not in DATA_PATHS:
            problems.append(f"data path must be {' or '.join(DATA_PATHS)}")
        if self.bandwidth_limit is not None and self.bandwidth_limit <= 0:
            problems.append("the bandwidth limit must be more than 0 bytes per second")
        if problems:
            raise ConfigError(f"Invalid transfer settings: {'; '.join(problems)}.")

    @property
    def threads(self) -> int:
        """Transfers that can run at once over the whole pool."""
        return max(1, self.processes) * self.concurrency

    @property
    def worker_threads(self) -> int:
        """Task threads per process: enough for ``small_requests``, never fewer than ``concurrency``."""
        small = 3 * self.concurrency if self.small_requests is None else self.small_requests
        return max(self.concurrency, small)

    @property
    def in_flight(self) -> int:
        """Tasks the scheduler keeps in flight at most: twice every worker thread (the next task waits in
        the worker while its thread finishes one)."""
        return 2 * max(1, self.processes) * self.worker_threads

    @property
    def process_bandwidth(self) -> int | None:
        """Bytes per second for one worker process: the run's limit split evenly across the processes."""
        if self.bandwidth_limit is None:
            return None
        return max(1, self.bandwidth_limit // max(1, self.processes))

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            # part uploads of a sequential stream run on helper threads beside the task threads
            max_pool_connections=self.worker_threads + self.concurrency + 2,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retry_mode="legacy",
            max_attempts=self.client_max_attempts,
            retry_connection_errors=False,  # the engine waits for an endpoint that is down, and says so
        )
