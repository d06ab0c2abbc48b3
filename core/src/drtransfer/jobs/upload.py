"""The upload job behind ``drtransfer upload``, ``dr-upload-model`` and ``drtransfer bench``.

Top to bottom: lock the targets, check them, prepare every run (inspect, select through the plugin
host, pure plan, plugin extensions, ``-w`` deletions), prepare the imports, confirm once, run the
engine, audit, ``-1``, submit the imports, and emit every event on the way::

    from drtransfer.config import load_runs
    from drtransfer.jobs import UploadRequest, upload

    report = upload(UploadRequest(runs=load_runs([Path("run.env")]), checkpoint="best"))
    assert report.ok
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drtransfer.config import apply_increment
from drtransfer.engine import EngineSettings, TransferSubscriber
from drtransfer.engine.executor import Executor, ExecutorChoice
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.events import BatchFinished, BatchStarted, CheckpointSelected, ModelFailed, ModelUploaded
from drtransfer.importing import ImportOptions, ImportResult, PreparedImport, SecretSource, prepare_imports
from drtransfer.importing import submit_imports as submit_import_items
from drtransfer.jobs.base import Confirm, Declined, EventSink, Notifications, always, notifications_open
from drtransfer.locking import target_locks
from drtransfer.operations import Operation
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import (
    Listings,
    PreparedModel,
    UploadOutcome,
    check_targets,
    execute,
    prepare_uploads,
    workers_started_early,
)


@dataclass(frozen=True)
class ImportSpec:
    """``-i`` / ``-I NAME``: import each uploaded model after its upload.

    ``target`` None: each run's importer default; ``name`` None: each run's upload prefix (a name is
    allowed for one run only); ``secret`` asks for passwords (never stored)."""

    target: str | None = None
    name: str | None = None
    description: str | None = None
    wait: bool = False
    secret: SecretSource | None = field(default=None, repr=False)
    warn: Callable[[str], None] | None = None  # what the service would record differently from the model


@dataclass(frozen=True)
class UploadRequest:
    """One upload of every run in ``runs`` (from :func:`drtransfer.config.load_runs`; ``-1`` is
    ``load_runs(..., increment=True)``: each run then targets its incremented prefix and its run file is
    edited after its upload succeeded)."""

    runs: Sequence[RunConfig]
    checkpoint: str = "last"
    wipe: bool = False
    dry_run: bool = False
    engine: EngineSettings = field(default_factory=EngineSettings)
    executor: ExecutorChoice = field(default_factory=ExecutorChoice)  # where the engine's tasks run
    imports: ImportSpec | None = None
    notifications: Notifications = field(default_factory=Notifications)
    command: str = "upload"  # the name events carry


@dataclass
class UploadReport:
    outcomes: list[UploadOutcome]
    imports: list[PreparedImport]
    import_results: list[ImportResult]
    seconds: float
    dry_run: bool
    notification_failures: list[str] = field(default_factory=list)

    @property
    def uploads_ok(self) -> bool:
        return all(o.result.status in ("ok", "dry-run") and "increment_error" not in o.extra for o in self.outcomes)

    @property
    def ok(self) -> bool:
        # A dry run skips every import; that is what was asked for, not a failure.
        return self.uploads_ok and (self.dry_run or all(result.ok for result in self.import_results))


class _RetryCount(TransferSubscriber):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str, **kwargs: Any) -> None:
        self.counts[model_id] = self.counts.get(model_id, 0) + 1  # model ids are run keys


def upload(
    request: UploadRequest,
    *,
    host: PluginHost | None = None,
    confirm: Confirm = always,
    subscribers: Sequence[TransferSubscriber] = (),
) -> UploadReport:
    """Run the whole upload; ConfigError (exit 2, nothing written) for anything found before writing,
    :class:`~drtransfer.jobs.base.Declined` when ``confirm`` says no. A model that fails is reported in
    its outcome; the others still finish."""
    started = time.monotonic()
    host = host or get_plugin_manager()
    runs = list(request.runs)
    if not runs:
        raise ConfigError("No run to upload; give run files, experiments or an activated DRfC environment.")
    make_executor = host.executors().get(request.executor.name)  # an unknown name: before anything runs
    if request.imports is not None and len(host.importers()) == 0:
        raise ConfigError(
            "No importer installed: -i/-I need an import plugin (aws-console or droa from drtransfer-plugins); "
            "install it or drop -i/-I."
        )
    failures: list[str] = []
    with notifications_open(host, runs, request.notifications, subscribers, failures) as sink:
        targets = [(run.upload.url or "aws", run.target_url) for run in runs if run.upload is not None]
        with target_locks([] if request.dry_run else targets):
            # Under the locks: the checks' listings of the targets become the engine's (nobody else of
            # ours writes there until the copies are done).
            listings = check_targets(runs, probe_write=not request.dry_run)
            executor, settings = make_executor(request.executor, request.engine)
            with workers_started_early(executor, runs, settings):
                outcomes, imports = _prepare_and_transfer(
                    request, host, runs, sink, confirm, subscribers, executor, settings, listings
                )
        if not request.dry_run:
            _increment(outcomes)
        import_results = _submit_imports(imports, outcomes, request, sink)
        seconds = time.monotonic() - started
        _emit_results(sink, outcomes, seconds, request)
    return UploadReport(outcomes, imports, import_results, seconds, request.dry_run, failures)


def _prepare_and_transfer(
    request: UploadRequest,
    host: PluginHost,
    runs: Sequence[RunConfig],
    sink: EventSink,
    confirm: Confirm,
    subscribers: Sequence[TransferSubscriber],
    executor: Executor,
    settings: EngineSettings,
    listings: Listings,
) -> tuple[list[UploadOutcome], list[PreparedImport]]:
    prepared = prepare_uploads(runs, host, checkpoint=request.checkpoint, wipe=request.wipe, listings=listings)
    imports = _prepare_imports(request, host, prepared)
    sink.prepared(prepared)
    if not request.dry_run and any(item.ok for item in prepared) and not confirm(prepared):
        raise Declined()
    planned = sum(item.plan.total_bytes for item in prepared if item.plan is not None)
    sink.emit(BatchStarted(command=request.command, runs=[item.run.key for item in prepared], bytes_planned=planned))
    for item in prepared:
        if item.selection is not None:
            sink.emit(
                CheckpointSelected(
                    run_id=item.run.run_id,
                    checkpoint=item.selection.checkpoint.name,
                    explanation=item.selection.explanation,
                    experiment=item.run.experiment or "",
                )
            )
    retries = _RetryCount()
    outcomes = execute(prepared, settings, [*subscribers, retries], executor)
    for outcome in outcomes:
        outcome.extra["retries"] = retries.counts.get(outcome.prepared.run.key, 0)
    return outcomes, imports


def _prepare_imports(
    request: UploadRequest, host: PluginHost, prepared: Sequence[PreparedModel]
) -> list[PreparedImport]:
    """Every import check (names, roles, sign-in, the service's model checks) before anything is copied."""
    spec = request.imports
    if spec is None:
        return []
    options = ImportOptions(
        description=spec.description,
        secret=spec.secret,
        uploading=True,
        dry_run=request.dry_run,
        engine=request.engine,
        warn=spec.warn,
    )
    return prepare_imports(host, prepared, target=spec.target, name=spec.name, options=options)


def _increment(outcomes: Sequence[UploadOutcome]) -> None:
    """``-1``: the run already uploaded into its incremented prefix (``load_runs(increment=True)``); the
    run file gets it only after that run's upload succeeded. A failed edit fails the run, the upload stands."""
    for outcome in outcomes:
        run = outcome.prepared.run
        if run.increment is not None and outcome.result.status == "ok":
            try:
                outcome.extra["next_upload_prefix"] = apply_increment(run.increment)
            except DrTransferError as error:
                outcome.extra["increment_error"] = str(error)


def _submit_imports(
    imports: Sequence[PreparedImport], outcomes: Sequence[UploadOutcome], request: UploadRequest, sink: EventSink
) -> list[ImportResult]:
    """Import what was uploaded; each outcome gets its import result under ``extra["import"]``. A failed
    import never hides a successful upload: both are reported, each on its own."""
    if not imports:
        return []
    wait = request.imports.wait if request.imports is not None else False
    uploads = {o.prepared.run.key: o.result for o in outcomes}
    results = submit_import_items(imports, uploads, wait=wait, notify=sink.emit)
    by_run = {result.key: result for result in results}
    for outcome in outcomes:
        result = by_run.get(outcome.prepared.run.key)
        if result is not None:
            outcome.extra["import"] = result.to_json()
    return results


def _emit_results(sink: EventSink, outcomes: Sequence[UploadOutcome], seconds: float, request: UploadRequest) -> None:
    failures = []
    for outcome in outcomes:
        run, result = outcome.prepared.run, outcome.result
        if result.status == "ok":
            sink.emit(
                ModelUploaded(
                    run_id=run.run_id,
                    target=run.target_url,
                    bytes=result.bytes,
                    seconds=result.seconds,
                    skipped=result.skipped,
                    experiment=run.experiment or "",
                )
            )
        elif result.status == "failed":
            reason = result.error or "failed"
            failures.append(f"{run.label}: {reason}")
            experiment = run.experiment or ""
            sink.emit(ModelFailed(run_id=run.run_id, target=run.target_url, reason=reason, experiment=experiment))
    sink.emit(
        BatchFinished(
            command=f"{request.command} (dry run)" if request.dry_run else request.command,
            succeeded=len(outcomes) - len(failures),
            failed=len(failures),
            bytes=sum(o.result.bytes for o in outcomes),
            seconds=seconds,
            failures=failures,
        )
    )
