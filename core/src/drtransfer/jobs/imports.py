"""The import job behind ``drtransfer import``: import every run's model without an upload step.

Importers that read the model themselves (DRoA copies the chosen checkpoint from the local bucket)
get it inspected and selected first; the others (the legacy console) import what an earlier upload
put in the upload bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drtransfer.endpoints import Endpoint
from drtransfer.engine import EngineSettings, TransferSubscriber
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.events import BatchFinished, BatchStarted
from drtransfer.importing import (
    ImportOptions,
    ImportResult,
    SecretSource,
    default_target,
    needs_local_model,
    prepare_imports,
    submit_imports,
)
from drtransfer.inventory import inspect_model
from drtransfer.jobs.base import Notifications, notifications_open
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import PreparedModel, default_client_factory


@dataclass(frozen=True)
class ImportRequest:
    runs: Sequence[RunConfig]
    target: str | None = None
    name: str | None = None
    checkpoint: str = "last"
    checkpoint_given: bool = False  # an explicit choice: refused for importers that take the uploaded model
    description: str | None = None
    wait: bool = False
    secret: SecretSource | None = field(default=None, repr=False)
    warn: Callable[[str], None] | None = None  # what the service would record differently from the model
    engine: EngineSettings = field(default_factory=EngineSettings)
    notifications: Notifications = field(default_factory=Notifications)


@dataclass
class ImportReport:
    results: list[ImportResult]
    seconds: float
    notification_failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[ImportResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed


def import_models(
    request: ImportRequest,
    *,
    host: PluginHost | None = None,
    subscribers: Sequence[TransferSubscriber] = (),
) -> ImportReport:
    started = time.monotonic()
    host = host or get_plugin_manager()
    runs = list(request.runs)
    if not runs:
        raise ConfigError("No run to import; give run files, experiments or an activated DRfC environment.")
    options = ImportOptions(
        description=request.description,
        secret=request.secret,
        uploading=False,
        engine=request.engine,
        subscribers=subscribers,
        warn=request.warn,
    )
    targets = [request.target or default_target(run, options, host) for run in runs]
    reads_model = [needs_local_model(host, target) for target in targets]
    if request.checkpoint_given and not all(reads_model):
        uploaded = sorted({t for t, reads in zip(targets, reads_model, strict=True) if not reads})
        raise ConfigError(
            f"--checkpoint, -b and -c choose what the importer copies from the local bucket; {', '.join(uploaded)} "
            f"imports the model that drtransfer upload put in the upload bucket, so choose the checkpoint when "
            f"uploading."
        )
    failures: list[str] = []
    with notifications_open(host, runs, request.notifications, subscribers, failures) as sink:
        models = _models_for(runs, reads_model, host, request.checkpoint)
        prepared = prepare_imports(host, models, target=request.target, name=request.name, options=options)
        sink.emit(BatchStarted(command="import", runs=[run.key for run in runs], bytes_planned=0))
        results = submit_imports(prepared, None, wait=request.wait, notify=sink.emit)
        failed = [r for r in results if not r.ok]
        labels = {run.key: run.label for run in runs}
        sink.emit(
            BatchFinished(
                command="import",
                succeeded=len(results) - len(failed),
                failed=len(failed),
                bytes=0,
                seconds=time.monotonic() - started,
                failures=[f"{labels.get(r.key or '', 'run ' + r.run_id)}: {r.message}" for r in failed],
            )
        )
    return ImportReport(results, time.monotonic() - started, failures)


def _models_for(
    runs: Sequence[RunConfig], reads_model: Sequence[bool], host: PluginHost, checkpoint: str
) -> list[PreparedModel]:
    models = []
    clients: dict[Endpoint, object] = {}
    for run, reads in zip(runs, reads_model, strict=True):
        model = PreparedModel(run)
        if reads:
            try:
                client = clients.setdefault(run.local, default_client_factory(run.local))
                model.inventory = inspect_model(run, client)
                model.selection = host.select_checkpoint(checkpoint, model.inventory, run)
            except ConfigError:
                raise
            except DrTransferError as error:
                model.inventory, model.error = None, str(error)
        models.append(model)
    return models
