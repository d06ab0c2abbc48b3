"""The car-package job behind ``drtransfer car-zip`` and ``dr-upload-car-zip``.

1. check the upload buckets when packages go there (configuration errors, before anything is written);
2. build every run's package through the chosen packager (from S3 or another source it offers), the
   packager's rules checked before anything is written; a run that fails is reported, the others go on;
3. confirm once;
4. write ``output/<name><suffix>`` and/or upload next to the model through the transfer engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drtransfer.engine import EngineSettings, TransferSubscriber
from drtransfer.errors import ConfigError, TransferError
from drtransfer.events import BatchFinished, BatchStarted, ModelFailed
from drtransfer.jobs.base import Confirm, Declined, Notifications, always, notifications_open
from drtransfer.locking import target_locks
from drtransfer.packaging import (
    Package,
    PackageOutcome,
    PackageRequest,
    archive_location,
    build_packages,
    built_event,
    get_packager,
    upload_packages,
    write_package,
)
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import check_targets


@dataclass(frozen=True)
class CarRequest:
    runs: Sequence[RunConfig]
    format: str = "car"
    source: str | None = None  # None: the packager's first (default) source
    checkpoint: str | None = None  # None: the packager's default for its source
    output: Path | None = None
    local_bucket: bool = False
    upload: bool = True
    # A few archives of ~20 MiB each: one PutObject per archive, in this process (no worker pool).
    engine: EngineSettings = field(default_factory=lambda: EngineSettings(processes=0))
    notifications: Notifications = field(default_factory=Notifications)


@dataclass
class CarReport:
    outcomes: list[PackageOutcome]
    seconds: float
    notification_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def package_cars(
    request: CarRequest,
    *,
    host: PluginHost | None = None,
    confirm: Confirm = always,
    subscribers: Sequence[TransferSubscriber] = (),
) -> CarReport:
    """``confirm`` is asked with the outcomes whose packages are about to be uploaded (not for
    ``--output`` alone, which writes only local files)."""
    started = time.monotonic()
    if not request.upload and request.output is None:
        raise ConfigError("--no-upload needs --output DIR: otherwise the archives would go nowhere.")
    host = host or get_plugin_manager()
    packager = get_packager(host, request.format)
    runs = list(request.runs)
    if request.upload and not request.local_bucket:
        check_targets(runs)
    failures: list[str] = []
    with notifications_open(host, runs, request.notifications, subscribers, failures) as sink:
        sink.emit(BatchStarted(command="car-zip", runs=[run.key for run in runs], bytes_planned=0))
        source = request.source or packager.sources[0]
        outcomes = build_packages(
            runs, PackageRequest(source=source, checkpoint=request.checkpoint), packager, host, on_event=sink.emit
        )
        ready = [o for o in outcomes if o.ok]
        if request.upload and ready and not confirm(ready):
            raise Declined()
        _deliver(ready, request, subscribers)
        for outcome in outcomes:
            if outcome.package is not None:
                for location in outcome.locations:
                    sink.emit(built_event(outcome.package, location))
            if outcome.error is not None:
                run = outcome.run
                where = destination(outcome, request)
                sink.emit(ModelFailed(run.run_id, where, str(outcome.error), experiment=run.experiment or ""))
        failed = [o for o in outcomes if not o.ok]
        sink.emit(
            BatchFinished(
                command="car-zip",
                succeeded=len(outcomes) - len(failed),
                failed=len(failed),
                bytes=sum(o.package.size for o in outcomes if o.ok and o.package is not None),
                seconds=time.monotonic() - started,
                failures=[f"{o.run.label}: {o.error}" for o in failed],
            )
        )
    return CarReport(outcomes, time.monotonic() - started, failures)


def destination(outcome: PackageOutcome, request: CarRequest) -> str:
    """Where a package goes (or would have gone): its S3 URL, else the output folder."""
    if outcome.package is not None and request.upload:
        return archive_location(outcome.package, local_bucket=request.local_bucket).url
    return str(request.output) if request.output else outcome.run.target_url


def _deliver(ready: Sequence[PackageOutcome], request: CarRequest, subscribers: Sequence[TransferSubscriber]) -> None:
    """Local files first (a failed upload still leaves them), then one engine run for every upload."""
    if request.output is not None:
        for outcome in ready:
            assert outcome.package is not None
            outcome.locations.append(str(write_package(outcome.package, request.output)))
    if not request.upload or not ready:
        return
    packages: list[Package] = [o.package for o in ready if o.package is not None]
    where = [archive_location(p, local_bucket=request.local_bucket) for p in packages]
    endpoints = [p.run.local if request.local_bucket else p.run.upload for p in packages]
    locks = [(e.url or "aws", w.url) for e, w in zip(endpoints, where, strict=True) if e is not None]
    with target_locks(locks):
        results = upload_packages(
            packages, local_bucket=request.local_bucket, settings=request.engine, subscribers=subscribers
        )
    for outcome, location, result in zip(ready, where, results, strict=True):
        if result.status == "ok":
            outcome.locations.append(location.url)
        else:
            outcome.error = TransferError(f"Uploading {location.url} failed: {result.error}")
