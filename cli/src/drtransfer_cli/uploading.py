"""The upload flow shared by ``drtransfer upload`` and ``dr-upload-model`` (which differ only in
spelling and wording)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from drtransfer.config import increment_upload_prefix
from drtransfer.engine import TransferSubscriber
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.events import BatchFinished, BatchStarted, CheckpointSelected, ModelFailed, ModelUploaded
from drtransfer.importing import PreparedImport
from drtransfer.locking import target_locks
from drtransfer.notifying import NotificationDispatcher, collect_notify_urls, open_notifications
from drtransfer.operations import CopyObject, DeleteObject, ModelResult, Operation, OperationResult
from drtransfer.plugins import PluginHost
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import PreparedModel, UploadOutcome, check_targets, execute, prepare_uploads
from drtransfer_cli import app
from drtransfer_cli.commands.import_ import prepare_for_upload, report_imports, submit_after_upload


@dataclass(frozen=True)
class Wording:
    """How a command talks: drtransfer's own words or DRfC's."""

    prog: str
    ready: str = "Ready to upload {count} model(s):"
    question: str = "Are you sure? [y/N] "
    refusal: str = "Aborted: nothing was uploaded."
    dry_run_banner: str = "Dry run: nothing is written or deleted at any target."


DRTRANSFER_WORDING = Wording(prog="drtransfer")
DRFC_WORDING = Wording(
    prog="dr-upload-model",
    ready="Ready to upload model(s):",
    refusal="Aborting.",
    dry_run_banner="*** DRYRUN MODE ***",
)


@dataclass(frozen=True)
class UploadRequest:
    run_files: Sequence[Path]
    system_env: Path | None
    experiments: Sequence[str]
    all_experiments: Path | None
    checkpoint: str
    force: bool = False
    wipe: bool = False
    dry_run: bool = False
    prefix: str | None = None
    reward_function: str | None = None
    local_target: bool = False
    increment: bool = False
    import_requested: bool = False
    import_name: str | None = None
    processes: int | None = None
    concurrency: int | None = None
    part_size: int | None = None
    json_output: bool = False
    no_progress: bool = False
    verbose: bool = False
    disabled_plugins: Sequence[str] = ()
    notify_urls: Sequence[str] = ()
    import_target: str | None = None
    wait: bool = False
    password_stdin: bool = False
    description: str | None = None

    @property
    def importing(self) -> bool:
        return self.import_requested or self.import_name is not None


class RetryLog(TransferSubscriber):
    """Counts every retry per model (for ``--json`` and ``-v``); with ``verbose`` it also prints each
    retry and each failed operation on stderr as it happens."""

    def __init__(self, labels: dict[str, str], *, verbose: bool, prog: str) -> None:
        self.labels = labels
        self.verbose = verbose
        self.prog = prog
        self.counts: dict[str, int] = {}

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str) -> None:
        self.counts[model_id] = self.counts.get(model_id, 0) + 1
        if self.verbose:
            label = self.labels.get(model_id, model_id)
            click.echo(f"{self.prog}: {label}: retry {attempt} of {operation.target.url}: {error}", err=True)

    def on_operation(self, model_id: str, result: OperationResult) -> None:
        if self.verbose and result.status == "failed":
            label = self.labels.get(model_id, model_id)
            click.echo(f"{self.prog}: {label}: {result.operation.target.url} failed: {result.error}", err=True)


def prefix_overrides(prefix: str | None) -> dict[str, str]:
    """``-p PREFIX``: source prefix, its metrics and the target prefix all become PREFIX (as DRfC)."""
    if prefix is None:
        return {}
    prefix = prefix.strip("/")
    if not prefix:
        raise ConfigError("-p needs a non-empty prefix.")
    return {
        "DR_LOCAL_S3_MODEL_PREFIX": prefix,
        "DR_LOCAL_S3_METRICS_PREFIX": f"{prefix}/metrics",
        "DR_UPLOAD_S3_PREFIX": prefix,
    }


def run_upload(request: UploadRequest, wording: Wording = DRTRANSFER_WORDING) -> int:
    started = time.monotonic()
    host = app.build_host(request.disabled_plugins)
    importing = request.importing
    import_only = [
        flag
        for flag, given in (
            ("--to", request.import_target),
            ("--wait", request.wait),
            ("--password-stdin", request.password_stdin),
            ("--description", request.description),
        )
        if given
    ]
    if import_only and not importing:
        raise ConfigError(f"{', '.join(import_only)} only apply to an import: add -i or -I NAME, or drop them.")
    if importing and request.local_target:
        raise ConfigError("Combination of -i and -L is not permitted: the import reads from the upload bucket.")
    if importing and len(host.importers()) == 0:
        raise ConfigError(
            "No importer installed: -i/-I need an import plugin (aws-console or droa from drtransfer-plugins); "
            "install it or drop -i/-I."
        )
    runs = app.load_runs(
        request.run_files,
        system_env=request.system_env,
        experiments=request.experiments,
        all_experiments=request.all_experiments,
        overrides=prefix_overrides(request.prefix),
        local_target=request.local_target,
        reward_function=request.reward_function,
    )
    if request.increment:
        missing = [run.label for run in runs if run.run_file is None]
        if missing:
            raise ConfigError(f"-1 needs each run's run.env to edit; none is known for {', '.join(missing)}.")
    notifications = open_notifications(
        host, collect_notify_urls(request.notify_urls, os.environ, runs), verbose=request.verbose, stderr=sys.stderr
    )
    try:
        check_targets(runs, probe_write=not request.dry_run)
        targets = [(run.upload.url or "aws", run.target_url) for run in runs if run.upload is not None]
        with target_locks([] if request.dry_run else targets):
            outcomes, imports = _plan_and_transfer(request, wording, host, runs, notifications)
        for outcome in outcomes:
            run = outcome.prepared.run
            if request.increment and outcome.result.status == "ok" and run.run_file is not None:
                try:
                    outcome.extra["next_upload_prefix"] = increment_upload_prefix(
                        run.run_file, system_env=run.system_file
                    )
                except DrTransferError as error:  # the upload stands; only the run file kept its prefix
                    outcome.extra["increment_error"] = str(error)
        # A failed import never hides a successful upload: both are reported, each on its own.
        import_results = submit_after_upload(imports, outcomes, wait=request.wait, notify=notifications.emit)
        seconds = time.monotonic() - started
        report(outcomes, request, seconds)
        if request.json_output:
            pass  # each model's JSON line carries its import result
        elif request.dry_run:
            for item in imports:
                click.echo(f"{item.run.label}: would import as {item.name!r} into {item.target}")
        else:
            report_imports(import_results, runs, json_output=False)
        _emit_results(notifications, outcomes, seconds, dry_run=request.dry_run)
    finally:
        for line in notifications.close():
            click.echo(f"{wording.prog}: warning: notification failed: {line}", err=True)
    uploads_ok = all(o.result.status in ("ok", "dry-run") and "increment_error" not in o.extra for o in outcomes)
    # A dry run skips every import; that is what was asked for, not a failure.
    imports_ok = request.dry_run or all(result.ok for result in import_results)
    return app.EXIT_OK if uploads_ok and imports_ok else app.EXIT_FAILED


def _plan_and_transfer(
    request: UploadRequest,
    wording: Wording,
    host: PluginHost,
    runs: Sequence[RunConfig],
    notifications: NotificationDispatcher,
) -> tuple[list[UploadOutcome], list[PreparedImport]]:
    prepared = prepare_uploads(runs, host, checkpoint=request.checkpoint, wipe=request.wipe)
    settings = app.engine_settings(request.processes, request.concurrency, request.part_size, dry_run=request.dry_run)
    imports: list[PreparedImport] = []
    if request.importing:  # every import check (names, roles, sign-in) before anything is copied
        imports = prepare_for_upload(
            host,
            prepared,
            target=request.import_target,
            name=request.import_name,
            password_stdin=request.password_stdin,
            description=request.description,
            engine=settings,
            dry_run=request.dry_run,
        )
    lines = [wording.ready.format(count=len(prepared))]
    for item in prepared:
        if item.ok and item.selection is not None:
            lines.append(
                f"  {item.run.label}: {item.run.source_url} -> {item.run.target_url} ({item.selection.explanation})"
            )
        else:
            lines.append(f"  {item.run.label}: cannot upload: {item.error}")
    if request.dry_run:
        click.echo(wording.dry_run_banner, err=True)
        for line in lines:
            click.echo(line, err=True)
    elif any(item.ok for item in prepared):
        app.confirm(lines, force=request.force, question=wording.question, refusal=wording.refusal)

    planned = sum(item.plan.total_bytes for item in prepared if item.plan is not None)
    notifications.emit(
        BatchStarted(command="upload", runs=[item.run.run_id for item in prepared], bytes_planned=planned)
    )
    for item in prepared:
        if item.selection is not None:
            notifications.emit(
                CheckpointSelected(
                    run_id=item.run.run_id,
                    checkpoint=item.selection.checkpoint.name,
                    explanation=item.selection.explanation,
                )
            )
    progress = None
    if app.wants_progress(request.no_progress, request.json_output) and not request.dry_run:
        progress = app.ProgressBars({p.run.run_id: p.run.label for p in prepared})
    settings = app.engine_settings(request.processes, request.concurrency, request.part_size, dry_run=request.dry_run)
    retries = RetryLog({p.run.run_id: p.run.label for p in prepared}, verbose=request.verbose, prog=wording.prog)
    try:
        outcomes = execute(prepared, settings, [progress, retries] if progress else [retries])
    finally:
        if progress:
            progress.close()
    for outcome in outcomes:
        outcome.extra["retries"] = retries.counts.get(outcome.prepared.run.run_id, 0)
    return outcomes, imports


def _emit_results(
    notifications: NotificationDispatcher, outcomes: Sequence[UploadOutcome], seconds: float, *, dry_run: bool
) -> None:
    failures = []
    for outcome in outcomes:
        run, result = outcome.prepared.run, outcome.result
        if result.status == "ok":
            notifications.emit(
                ModelUploaded(
                    run_id=run.run_id,
                    target=run.target_url,
                    bytes=result.bytes,
                    seconds=result.seconds,
                    skipped=result.skipped,
                )
            )
        elif result.status == "failed":
            reason = result.error or "failed"
            failures.append(f"run {run.run_id}: {reason}")
            notifications.emit(ModelFailed(run_id=run.run_id, target=run.target_url, reason=reason))
    notifications.emit(
        BatchFinished(
            command="upload (dry run)" if dry_run else "upload",
            succeeded=len(outcomes) - len(failures),
            failed=len(failures),
            bytes=sum(o.result.bytes for o in outcomes),
            seconds=seconds,
            failures=failures,
        )
    )


def describe_operation(result: OperationResult) -> str:
    op = result.operation
    size = app.human_bytes(op.size)
    if isinstance(op, CopyObject):
        what = f"copy   {op.source.location.url} -> {op.target.url}"
    elif isinstance(op, DeleteObject):
        what = f"delete {op.target.url}"
    else:
        what = f"put    {op.target.url}"
    how = f" [{result.strategy}]" if result.strategy else ""
    return f"  {what} ({size}){how}"


def outcome_json(outcome: UploadOutcome) -> dict[str, object]:
    item: PreparedModel = outcome.prepared
    result: ModelResult = outcome.result
    data: dict[str, object] = {
        "run_id": item.run.run_id,
        "source": item.run.source_url,
        "target": item.run.target_url,
        "checkpoint": item.selection.checkpoint.name if item.selection else None,
        "selection": item.selection.explanation if item.selection else None,
        "objects": sum(1 for r in result.operations if r.status in ("copied", "put", "dry-run", "skipped")),
        "bytes": result.bytes,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "status": result.status,
        "error": result.error,
    }
    data.update(outcome.extra)
    return data


def report(outcomes: Sequence[UploadOutcome], request: UploadRequest, seconds: float) -> None:
    for outcome in outcomes:
        if request.json_output:
            app.print_json(outcome_json(outcome))
            continue
        result, run = outcome.result, outcome.prepared.run
        if request.dry_run and outcome.prepared.ok:
            click.echo(f"{run.label}: would write {run.target_url}/")
            for op_result in result.operations:
                click.echo(describe_operation(op_result))
            continue
        if result.status == "ok":
            click.echo(
                f"{run.label}: uploaded {run.target_url}/ ({app.human_bytes(result.bytes)} in "
                f"{result.seconds:.1f} s, {result.skipped} object(s) already there)"
            )
        else:
            click.echo(f"{run.label}: FAILED: {result.error}", err=True)
        if request.verbose and not request.dry_run:
            count = int(outcome.extra.get("retries", 0))
            click.echo(f"{run.label}: {count} {'retry' if count == 1 else 'retries'}", err=True)
        if "next_upload_prefix" in outcome.extra:
            click.echo(f"{run.label}: DR_UPLOAD_S3_PREFIX is now {outcome.extra['next_upload_prefix']}")
        if "increment_error" in outcome.extra:
            click.echo(f"{run.label}: -1 FAILED: {outcome.extra['increment_error']}", err=True)
    if not request.json_output and not request.dry_run:
        failed = sum(1 for o in outcomes if o.result.status == "failed")
        click.echo(
            f"{len(outcomes) - failed} of {len(outcomes)} model(s) uploaded in {seconds:.1f} s.", err=bool(failed)
        )
    sys.stdout.flush()
