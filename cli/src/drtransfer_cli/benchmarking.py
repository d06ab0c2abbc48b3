"""``drtransfer bench``: measure the real upload path on synthetic models under a scratch prefix.

The bench writes N realistic DRfC models (:func:`drtransfer.samples.seed_model`)
under ``drtransfer-bench/<run id>/src/`` in the source bucket, uploads them with the real upload path
(inspection, checkpoint selection, planning, :func:`drtransfer.engine.run_transfer`) once per engine
setting into ``drtransfer-bench/<run id>/<case>/`` of the target bucket, and measures each upload:
wall seconds, MiB/s, objects/s, client CPU seconds and peak RSS of this process and its workers.

It deletes only its own scratch objects: the run id is fresh (the bench checks its prefix is empty
before writing), and cleanup lists and deletes exactly ``drtransfer-bench/<run id>/`` in the two buckets
it wrote to, also after Ctrl-C or SIGTERM.

:class:`TreeMonitor` is also what ``benchmarks/`` uses to measure peer tools' process trees.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
import resource
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from drtransfer import __version__
from drtransfer.endpoints import Endpoint, list_pages, make_s3_client
from drtransfer.engine import EngineSettings, MiB
from drtransfer.errors import ConfigError, TransferError
from drtransfer.runconfig import RunConfig
from drtransfer.samples import NETWORK_SIZES, seed_model

SCRATCH_ROOT = "drtransfer-bench"
NETWORKS = tuple(NETWORK_SIZES)
# Written by seed_model but never part of an upload (SageMaker's IP handshake, the sync marker): removed
# from the source so every tool that copies a whole prefix moves exactly what an upload moves.
NOT_UPLOADED = ("ip/ip.json", "ip/done", "model/.ready")


# ---- measuring a process tree ----------------------------------------------------------------------


@dataclass
class TreeUsage:
    """What :class:`TreeMonitor` saw: peaks of the summed RSS and PSS, and CPU seconds per process.

    RSS counts a page shared by several processes (libraries, fork copy-on-write) once per process, so
    its sum is a conservative peak; PSS splits shared pages between the processes sharing them.
    """

    peak_rss: int = 0
    peak_pss: int = 0
    samples: int = 0
    monitor_cpu: float = 0.0  # CPU seconds the sampling thread itself used (in the watching process)
    cpu: dict[tuple[int, float], tuple[float, float]] = field(default_factory=dict)  # (pid, ctime) -> first, last

    @property
    def sampled_cpu(self) -> float:
        """CPU seconds used while watched (a lower bound: a process's last interval before exit is lost)."""
        return sum(last - first for first, last in self.cpu.values())


class TreeMonitor:
    """Samples a process and its descendants every ``interval`` seconds in a background thread.

    RSS is summed over the tree (shared pages count once per process: a conservative peak). Processes
    in ``exclude`` and their descendants (the embedded S3 servers) are never counted. With
    ``include_root=False`` the root itself is not counted (the caller measures it exactly).
    """

    def __init__(
        self, root: int, *, exclude: Collection[int] = (), include_root: bool = True, interval: float = 0.05
    ) -> None:
        self.root = psutil.Process(root)
        self.exclude = set(exclude)
        self.include_root = include_root
        self.interval = interval
        self.usage = TreeUsage()
        self._known: dict[tuple[int, float], psutil.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _excluded(self) -> set[int]:
        out = set(self.exclude)
        for pid in self.exclude:
            with contextlib.suppress(psutil.Error):
                out.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        return out

    def sample(self) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return  # the root has exited
        excluded = self._excluded()
        rss = pss = 0
        for proc in tree:
            if proc.pid in excluded or (proc.pid == self.root.pid and not self.include_root):
                continue
            try:
                key = (proc.pid, proc.create_time())
                proc = self._known.setdefault(key, proc)  # keep one object per process (psutil caches)
                with proc.oneshot():
                    memory = proc.memory_full_info()
                    times = proc.cpu_times()
                rss += memory.rss
                pss += getattr(memory, "pss", memory.rss)  # PSS is Linux-only
            except psutil.Error:
                continue
            used = times.user + times.system
            first, _ = self.usage.cpu.get(key, (used, used))
            self.usage.cpu[key] = (first, used)
        self.usage.peak_rss = max(self.usage.peak_rss, rss)
        self.usage.peak_pss = max(self.usage.peak_pss, pss)
        self.usage.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
        self.usage.monitor_cpu = time.thread_time()  # this thread's own CPU since it started

    def start(self) -> TreeMonitor:
        self.sample()
        # Processes present at the start count only what they use from now on.
        self.usage.cpu = {key: (last, last) for key, (_, last) in self.usage.cpu.items()}
        self._thread = threading.Thread(target=self._run, name="drtransfer-bench-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TreeUsage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()
        return self.usage


@dataclass(frozen=True)
class Usage:
    seconds: float
    cpu_seconds: float
    peak_rss: int
    peak_pss: int


@contextlib.contextmanager
def measure_this_process(exclude: Collection[int] = ()) -> Iterator[list[Usage]]:
    """Measure wall time, CPU and peak RSS of this process and its children (not ``exclude``).

    Yields a list that holds one :class:`Usage` after the block. Child CPU is the larger of two lower
    bounds: ``getrusage`` of reaped children (exact for them) plus what still-running children used, and
    the per-process sampling (which also sees grandchildren, e.g. forkserver workers).
    """
    out: list[Usage] = []
    monitor = TreeMonitor(os.getpid(), exclude=exclude, include_root=True)
    before_self = resource.getrusage(resource.RUSAGE_SELF)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    monitor.start()
    started = time.perf_counter()
    try:
        yield out
    finally:
        seconds = time.perf_counter() - started
        usage = monitor.stop()
        after_self = resource.getrusage(resource.RUSAGE_SELF)
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (after_self.ru_utime + after_self.ru_stime) - (before_self.ru_utime + before_self.ru_stime)
        reaped = (after_children.ru_utime + after_children.ru_stime) - (
            before_children.ru_utime + before_children.ru_stime
        )
        me = os.getpid()
        alive = psutil.pids()
        sampled_children = sum(last - first for (pid, _), (first, last) in usage.cpu.items() if pid != me)
        alive_children = sum(
            last - first for (pid, _), (first, last) in usage.cpu.items() if pid != me and pid in alive
        )
        cpu = own - usage.monitor_cpu + max(reaped + alive_children, sampled_children)
        out.append(Usage(seconds, cpu, usage.peak_rss, usage.peak_pss))


# ---- settings, results ------------------------------------------------------------------------------


def case_label(settings: EngineSettings) -> str:
    return f"{settings.processes} proc × {settings.concurrency} conc, {settings.part_size / MiB:g} MiB parts"


@dataclass
class Measurement:
    """One upload of every bench model with one engine setting."""

    settings: EngineSettings
    repeat: int
    seconds: float
    bytes: int
    objects: int
    cpu_seconds: float
    peak_rss: int
    peak_pss: int
    status: str = "ok"  # "ok" or "failed"
    error: str | None = None

    @property
    def label(self) -> str:
        return case_label(self.settings)

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MiB / self.seconds if self.seconds > 0 else 0.0

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "setting": {
                "processes": self.settings.processes,
                "concurrency": self.settings.concurrency,
                "part_size": self.settings.part_size,
                "label": self.label,
            },
            "repeat": self.repeat,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
            "objects": self.objects,
            "mib_per_s": round(self.mib_per_s, 2),
            "objects_per_s": round(self.objects_per_s, 2),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "peak_rss_mib": round(self.peak_rss / MiB, 1),
            "peak_pss_mib": round(self.peak_pss / MiB, 1),
        }


@dataclass(frozen=True)
class BenchSpec:
    """Where the bench writes and what it generates. ``scale`` shrinks the checkpoint files (tests)."""

    source: Endpoint
    source_bucket: str
    target: Endpoint
    target_bucket: str
    models: int = 4
    network: str = "shallow"
    scale: float = 1.0
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        if self.models < 1:
            raise ConfigError(f"--models must be at least 1, not {self.models}.")
        if self.network not in NETWORK_SIZES:
            raise ConfigError(f"Unknown network {self.network!r}; choose one of {', '.join(NETWORKS)}.")

    @property
    def same_endpoint(self) -> bool:
        return self.source.same_store(self.target)


@dataclass
class BenchReport:
    scratch_prefix: str
    spec: BenchSpec
    model_bytes: int = 0
    model_objects: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    deleted: int = 0
    started: str = ""

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "drtransfer": __version__,
            "started": self.started,
            "source": f"s3://{spec.source_bucket} on the {spec.source.describe()}",
            "target": f"s3://{spec.target_bucket} on the {spec.target.describe()}",
            "same_endpoint": spec.same_endpoint,
            "scratch_prefix": self.scratch_prefix,
            "models": spec.models,
            "network": spec.network,
            "model_bytes": self.model_bytes,
            "model_objects": self.model_objects,
            "results": [m.to_json() for m in self.measurements],
            "scratch_objects_deleted": self.deleted,
        }


# ---- scratch area -----------------------------------------------------------------------------------


class Scratch:
    """The bench's own prefix ``drtransfer-bench/<run id>/`` in the source and target buckets."""

    def __init__(self, spec: BenchSpec, run_id: str | None = None) -> None:
        self.spec = spec
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = run_id or f"{stamp}-{secrets.token_hex(4)}"
        self.prefix = f"{SCRATCH_ROOT}/{self.run_id}/"
        self.source_client = make_s3_client(spec.source)
        self.target_client = make_s3_client(spec.target)

    def places(self) -> list[tuple[Any, str]]:
        places = [(self.source_client, self.spec.source_bucket)]
        if not (self.spec.same_endpoint and self.spec.source_bucket == self.spec.target_bucket):
            places.append((self.target_client, self.spec.target_bucket))
        return places

    def claim(self) -> None:
        """Refuse to start unless the prefix is empty in both buckets: then everything under it is ours."""
        for client, bucket in self.places():
            try:
                found = client.list_objects_v2(Bucket=bucket, Prefix=self.prefix, MaxKeys=1).get("KeyCount", 0)
            except Exception as error:  # one sentence for the user
                from drtransfer.s3errors import describe_client_error

                endpoint = self.spec.source if client is self.source_client else self.spec.target
                raise describe_client_error(error, endpoint=endpoint, bucket=bucket, action="list") from None
            if found:
                raise ConfigError(f"s3://{bucket}/{self.prefix} is not empty; run the bench again for a fresh prefix.")

    def warm_up(self) -> None:
        """One small write and delete in the target bucket before the first measurement: some servers
        (SeaweedFS) allocate storage for a new bucket at its first write, which would be charged to
        whichever setting goes first."""
        key = f"{self.prefix}warm-up"
        self.target_client.put_object(Bucket=self.spec.target_bucket, Key=key, Body=b"x" * 1024)
        self.target_client.delete_object(Bucket=self.spec.target_bucket, Key=key)

    def source_prefix(self, index: int) -> str:
        return model_source_prefix(self.prefix, index)

    def target_prefix(self, case: int, index: int) -> str:
        return f"{self.prefix}case-{case:02d}/model-{index:02d}"

    def delete(self, sub: str = "") -> int:
        """Delete every object (and abort every multipart upload) under ``prefix + sub`` in our buckets."""
        prefix = self.prefix + sub
        assert prefix.startswith(f"{SCRATCH_ROOT}/") and prefix.endswith("/"), prefix
        deleted = 0
        for client, bucket in self.places():
            deleted += delete_prefix(client, bucket, prefix)
        return deleted


def model_source_prefix(scratch_prefix: str, index: int) -> str:
    return f"{scratch_prefix}src/model-{index:02d}"


def delete_prefix(client: Any, bucket: str, prefix: str) -> int:
    """Delete the objects and multipart uploads under ``prefix`` (which must end with ``/``).

    A second listing catches an object whose PUT was still completing on the server during the first.
    """
    if not prefix.endswith("/") or prefix == "/":
        raise ValueError(f"refusing to delete under {prefix!r}")
    deleted = 0
    for _ in range(2):
        found = 0
        for page in list_pages(client.list_objects_v2, Bucket=bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", []) if item["Key"].startswith(prefix)]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                found += len(keys)
        with contextlib.suppress(Exception):  # servers without ListMultipartUploads have nothing to abort
            for upload in client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []):
                if upload["Key"].startswith(prefix):
                    client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        deleted += found
        if not found:
            break
    return deleted


# ---- the bench --------------------------------------------------------------------------------------


def bench_run(spec: BenchSpec, scratch: Scratch, case: int, index: int) -> RunConfig:
    """The DRfC run of bench model ``index`` uploading for setting number ``case``."""
    model_prefix = scratch.source_prefix(index)
    return RunConfig(
        run_id=f"bench-{index:02d}",
        local=spec.source,
        local_bucket=spec.source_bucket,
        model_prefix=model_prefix,
        upload=spec.target,
        upload_bucket=spec.target_bucket,
        upload_prefix=scratch.target_prefix(case, index),
        reward_key=f"{model_prefix}/reward_function.py",
        metrics_prefix=f"{model_prefix}/metrics",
        region=spec.region,
    )


def _seed_all(spec: BenchSpec, scratch_prefix: str) -> tuple[int, int]:
    """Write every bench model (in a child process); returns (bytes, objects) of what one upload moves."""
    client = make_s3_client(spec.source)

    def seed(index: int) -> tuple[int, int]:
        prefix = model_source_prefix(scratch_prefix, index)
        model = seed_model(
            client, spec.source_bucket, prefix, checkpoints=(1,), network=spec.network, scale=spec.scale, seed=index
        )
        client.delete_objects(
            Bucket=spec.source_bucket,
            Delete={"Objects": [{"Key": f"{prefix}/{relative}"} for relative in NOT_UPLOADED], "Quiet": True},
        )
        kept = {k: v for k, v in model.sizes.items() if k not in NOT_UPLOADED}
        return sum(kept.values()), len(kept)

    with ThreadPoolExecutor(max_workers=min(4, spec.models), thread_name_prefix="drtransfer-bench-seed") as pool:
        sizes = list(pool.map(seed, range(spec.models)))
    return sum(s for s, _ in sizes), sum(n for _, n in sizes)


def seed_models(spec: BenchSpec, scratch: Scratch) -> tuple[int, int]:
    """Write the bench models from a spawned child process.

    The generator holds whole checkpoint files in memory and Python keeps much of that heap afterwards;
    in a child it never inflates the peak RSS measured for the uploads. The child is always waited for
    (also on Ctrl-C), so nothing is written after cleanup.
    """
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        return pool.submit(_seed_all, scratch.spec, scratch.prefix).result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


Callback = Callable[[str], None]


def _upload(spec: BenchSpec, scratch: Scratch, case: int, settings: EngineSettings) -> tuple[int, int, str | None]:
    """One upload of every model through the upload job, as ``drtransfer upload -f`` runs it (target checks,
    locks, events); (bytes, objects, first error)."""
    from drtransfer.jobs import Notifications, UploadRequest, upload
    from drtransfer.plugins import get_plugin_manager

    runs = [bench_run(spec, scratch, case, i) for i in range(spec.models)]
    host = get_plugin_manager(load_entrypoints=False)  # core's `last` selection only: no plugin extends plans
    # No notification URL reaches a bench: its scratch uploads are not the user's models.
    request = UploadRequest(runs, engine=settings, command="bench", notifications=Notifications(environ={}))
    outcomes = upload(request, host=host).outcomes
    moved = [op for o in outcomes for op in o.result.operations if op.status in ("copied", "put")]
    errors = [o.result.error or (o.result.failed[0].error if o.result.failed else None)
              for o in outcomes if o.result.status != "ok"]
    first_error = next((e for e in errors if e), "a model failed" if errors else None)
    return sum(op.bytes or op.operation.size for op in moved), len(moved), first_error


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the bench like Ctrl-C (so cleanup runs); only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Keep a second Ctrl-C from cutting the cleanup short (it is bounded: a few listings and deletes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_bench(
    spec: BenchSpec,
    cases: Sequence[EngineSettings],
    *,
    repeat: int = 1,
    exclude_pids: Collection[int] = (),
    log: Callback = lambda message: None,
    on_measurement: Callable[[Measurement], None] = lambda m: None,
) -> BenchReport:
    """Seed, upload once per setting (``repeat`` times, settings alternating), clean up, report.

    ``exclude_pids`` are processes not to count as client (the embedded S3 servers of ``--demo``).
    Interrupts propagate after the scratch objects are deleted.
    """
    if not cases:
        raise ConfigError("Give at least one engine setting to try.")
    if repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, not {repeat}.")
    scratch = Scratch(spec)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    report = BenchReport(scratch.prefix, spec, started=started)
    with _sigterm_as_interrupt():
        scratch.claim()
        try:
            where = f"s3://{spec.source_bucket}/{scratch.prefix}src/"
            log(f"Writing {spec.models} {spec.network} model(s) under {where} ...")
            report.model_bytes, report.model_objects = seed_models(spec, scratch)
            scratch.warm_up()
            number = 0
            for rep in range(1, repeat + 1):
                for settings in cases:
                    number += 1
                    log(f"[{number}/{repeat * len(cases)}] uploading with {case_label(settings)} ...")
                    with measure_this_process(exclude=exclude_pids) as usage:
                        moved, objects, error = _upload(spec, scratch, number, settings)
                    used = usage[0]
                    measurement = Measurement(
                        settings, rep, used.seconds, moved, objects, used.cpu_seconds, used.peak_rss, used.peak_pss,
                        status="failed" if error else "ok", error=error,
                    )
                    report.measurements.append(measurement)
                    on_measurement(measurement)
                    scratch.delete(f"case-{number:02d}/")  # keep the footprint at one copy
        finally:
            with _sigint_deferred():
                log(f"Deleting the bench's scratch objects under {scratch.prefix} ...")
                try:
                    report.deleted = scratch.delete()
                except Exception as error:
                    raise TransferError(
                        f"Could not delete the bench's scratch objects ({error}); delete the prefix "
                        f"{scratch.prefix} in s3://{spec.source_bucket} and s3://{spec.target_bucket} by hand."
                    ) from None
    return report


# ---- the embedded pair of ``--demo`` ----------------------------------------------------------------


@dataclass
class DemoPair:
    """Two SeaweedFS servers on 127.0.0.1 (DRfC's MinIO and the upload target) in a temporary directory."""

    directory: Path
    servers: list[Any] = field(default_factory=list)
    source_bucket: str = "bench-local"
    target_bucket: str = "bench-upload"

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[DemoPair]:
        from drtransfer.locals3 import SeaweedServer

        with tempfile.TemporaryDirectory(prefix="drtransfer-bench-") as tmp:
            pair = cls(Path(tmp))
            try:
                for name, bucket in (("local", pair.source_bucket), ("upload", pair.target_bucket)):
                    server = SeaweedServer(data_dir=pair.directory / name)
                    pair.servers.append(server)
                    server.start()
                    server.create_bucket(bucket)
                yield pair
            finally:
                for server in pair.servers:
                    server.stop()

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.servers if s.process is not None]

    def spec(self, **kwargs: Any) -> BenchSpec:
        local, upload = self.servers
        return BenchSpec(
            source=local.endpoint("local"),
            source_bucket=self.source_bucket,
            target=upload.endpoint("upload"),
            target_bucket=self.target_bucket,
            **kwargs,
        )


def spec_for_run(run: RunConfig, **kwargs: Any) -> BenchSpec:
    """A bench between a configured run's local bucket and its upload bucket."""
    if run.upload is None or not run.upload_bucket:
        raise ConfigError(f"{run.label}: no upload bucket is configured; set DR_UPLOAD_S3_BUCKET.")
    return BenchSpec(
        source=run.local,
        source_bucket=run.local_bucket,
        target=run.upload,
        target_bucket=run.upload_bucket,
        region=run.region,
        **kwargs,
    )


__all__ = [
    "NETWORKS",
    "SCRATCH_ROOT",
    "BenchReport",
    "BenchSpec",
    "DemoPair",
    "Measurement",
    "TreeMonitor",
    "TreeUsage",
    "Usage",
    "case_label",
    "delete_prefix",
    "measure_this_process",
    "run_bench",
    "spec_for_run",
]
