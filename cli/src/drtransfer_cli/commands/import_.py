"""``drtransfer import``: import models into the AWS DeepRacer console or DeepRacer on AWS (DRoA), and
``drtransfer logout``: forget cached DRoA sign-ins.

``aws-console`` imports what ``drtransfer upload`` put at ``s3://DR_UPLOAD_S3_BUCKET/DR_UPLOAD_S3_PREFIX``;
``droa`` copies the chosen checkpoint from the local bucket into DRoA's own upload bucket first. The
helpers below (:data:`import_switches`, :func:`import_options`, :func:`report_imports`) are what
``drtransfer upload -i`` uses too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from drtransfer.engine import EngineSettings, TransferSubscriber
from drtransfer.errors import ConfigError, DrTransferError
from drtransfer.events import BatchFinished, BatchStarted
from drtransfer.importing import (
    ImportOptions,
    ImportResult,
    Notify,
    PreparedImport,
    SecretSource,
    default_target,
    prepare_imports,
    submit_imports,
)
from drtransfer.inventory import inspect_model
from drtransfer.notifying import collect_notify_urls, open_notifications
from drtransfer.plugins import PluginHost
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import PreparedModel, UploadOutcome, default_client_factory, unique_endpoint_names
from drtransfer_cli import app, options

import_switches = options._compose(
    click.option("--to", "import_target", metavar="TARGET",
                 help="Import target: droa or aws-console (default: droa when DR_DROA_URL is set, else aws-console)."),
    click.option("--wait", is_flag=True, help="Wait until each import is READY or failed, and report it."),
    click.option("--password-stdin", is_flag=True, help="Read the DRoA password from the first line of stdin."),
    click.option("--description", metavar="TEXT", help="Model description given to the import target."),
)


def secret_source(password_stdin: bool) -> SecretSource:
    """Passwords from one line of stdin (``--password-stdin``) or a hidden prompt on the terminal; each
    prompt is asked once per command and the answer kept in memory only."""
    answers: dict[str, str] = {}

    def ask(prompt: str) -> str:
        if prompt in answers:
            return answers[prompt]
        if password_stdin:
            value = sys.stdin.readline().rstrip("\r\n")
            if not value:
                raise ConfigError("--password-stdin was given, but stdin held no password line.")
        elif sys.stdin.isatty():
            value = click.prompt(prompt.rstrip(": "), hide_input=True, err=True)
        else:
            raise ConfigError("There is no terminal to ask for the password; pipe it in with --password-stdin.")
        answers[prompt] = value
        return value

    return ask


def import_options(
    *,
    password_stdin: bool,
    description: str | None,
    engine: EngineSettings,
    subscribers: Sequence[TransferSubscriber] = (),
    uploading: bool,
    dry_run: bool = False,
) -> ImportOptions:
    return ImportOptions(description=description, secret=secret_source(password_stdin), uploading=uploading,
                         dry_run=dry_run, engine=engine, subscribers=subscribers, warn=_warn)


def _warn(line: str) -> None:
    click.echo(f"warning: {line}", err=True)


def prepare_for_upload(
    host: PluginHost,
    prepared: Sequence[PreparedModel],
    *,
    target: str | None,
    name: str | None,
    password_stdin: bool,
    description: str | None,
    engine: EngineSettings,
    dry_run: bool,
) -> list[PreparedImport]:
    """``drtransfer upload -i/-I``, before anything is copied (after ``prepare_uploads``): every name, role,
    sign-in and import-target check; a ConfigError here means nothing may be uploaded."""
    chosen = import_options(password_stdin=password_stdin, description=description, engine=engine,
                            uploading=True, dry_run=dry_run)
    return prepare_imports(host, prepared, target=target, name=name, options=chosen)


def submit_after_upload(
    imports: Sequence[PreparedImport], outcomes: Sequence[UploadOutcome], *, wait: bool, notify: Notify | None
) -> list[ImportResult]:
    """``drtransfer upload -i/-I``, after ``execute``: import what was uploaded; each outcome gets its
    import result under ``extra["import"]`` (so ``--json`` shows upload and import side by side)."""
    results = submit_imports(imports, {o.prepared.run.run_id: o.result for o in outcomes}, wait=wait, notify=notify)
    by_run = {result.run_id: result for result in results}
    for outcome in outcomes:
        result = by_run.get(outcome.prepared.run.run_id)
        if result is not None:
            outcome.extra["import"] = result.to_json()
    return results


def report_imports(results: Sequence[ImportResult], runs: Sequence[RunConfig], *, json_output: bool) -> None:
    """One line per import (stdout when it went through, stderr when not), or one JSON object each."""
    labels = {run.run_id: run.label for run in runs}
    for result in results:
        if json_output:
            app.print_json({"import": result.to_json()})
            continue
        click.echo(f"{labels.get(result.run_id, result.run_id)}: {result.summary()}", err=not result.ok)


def _models_for(runs: Sequence[RunConfig], targets: Sequence[str], host: Any, checkpoint: str) -> list[PreparedModel]:
    """DRoA reads the model from the local bucket (inspect + select); the console needs no model."""
    models = []
    for run, target in zip(runs, targets, strict=True):
        model = PreparedModel(run)
        if target != "aws-console":
            try:
                model.inventory = inspect_model(run, default_client_factory(run.local))
                model.selection = host.select_checkpoint(checkpoint, model.inventory, run)
            except ConfigError:
                raise
            except DrTransferError as error:
                model.inventory, model.error = None, str(error)
        models.append(model)
    return models


def load_runs(kwargs: dict[str, Any]) -> list[RunConfig]:
    """The runs to import: DRoA needs no upload bucket, so none is required here (aws-console checks)."""
    from drtransfer.config import load_runs as load

    runs = load(list(kwargs["run_files"]), system_env=kwargs["system_env"], experiments=list(kwargs["experiments"]),
                all_experiments_dir=kwargs["all_experiments"], require_target=False)
    if not runs:
        raise ConfigError("No run to work on; give RUN_FILEs, --experiment or activate a DRfC environment.")
    return unique_endpoint_names(runs)


def run_import(kwargs: dict[str, Any]) -> int:
    started = time.monotonic()
    flags = ("checkpoint_expr", "best", "checkpoint_number")
    explicit_checkpoint = any(kwargs.get(k) not in (None, False) for k in flags)
    checkpoint = options.resolve_checkpoint(kwargs["checkpoint_expr"], kwargs["best"], kwargs["checkpoint_number"])
    host = app.build_host(kwargs["disabled_plugins"])
    runs = load_runs(kwargs)
    settings = app.engine_settings(kwargs["processes"], kwargs["concurrency"], kwargs["part_size"])
    progress = None
    if app.wants_progress(kwargs["no_progress"], kwargs["json_output"]):
        progress = app.ProgressBars({run.run_id: run.label for run in runs})
    chosen = import_options(password_stdin=kwargs["password_stdin"], description=kwargs["description"],
                            engine=settings, subscribers=[progress] if progress else [], uploading=False)
    targets = [kwargs["import_target"] or default_target(run, chosen) for run in runs]
    if explicit_checkpoint and "aws-console" in targets:
        raise ConfigError(
            "--checkpoint, -b and -c choose what DRoA copies from the local bucket; the aws-console import takes the "
            "model that drtransfer upload put in the upload bucket, so choose the checkpoint when uploading."
        )
    notifications = open_notifications(host, collect_notify_urls(kwargs["notify_urls"], os.environ, runs),
                                       verbose=kwargs["verbose"], stderr=sys.stderr)
    try:
        models = _models_for(runs, targets, host, checkpoint)
        prepared = prepare_imports(host, models, target=kwargs["import_target"], name=kwargs["name"], options=chosen)
        notifications.emit(BatchStarted(command="import", runs=[run.run_id for run in runs], bytes_planned=0))
        try:
            results = submit_imports(prepared, None, wait=kwargs["wait"], notify=notifications.emit)
        finally:
            if progress:
                progress.close()
        failed = [r for r in results if not r.ok]
        notifications.emit(BatchFinished(command="import", succeeded=len(results) - len(failed), failed=len(failed),
                                         bytes=0, seconds=time.monotonic() - started,
                                         failures=[f"run {r.run_id}: {r.message}" for r in failed]))
    finally:
        for line in notifications.close():
            click.echo(f"warning: notification failed: {line}", err=True)
    report_imports(results, runs, json_output=kwargs["json_output"])
    if not kwargs["json_output"]:
        click.echo(f"{len(results) - len(failed)} of {len(results)} import(s) went through.", err=bool(failed))
    return app.EXIT_OK if not failed else app.EXIT_FAILED


def register(cli: click.Group) -> None:
    @cli.command("import")
    @options.run_selection
    @options.checkpoint_choice
    @import_switches
    @click.option("--name", metavar="NAME", help="Model name (one run only; default: each run's DR_UPLOAD_S3_PREFIX).")
    @options.engine_options
    @options.output_options
    @options.plugin_options
    @app.handle_errors
    def import_command(**kwargs: Any) -> None:
        """Import every run's model into DRoA or the AWS DeepRacer console.

        Names default to each run's upload prefix and must be 1-64 letters, digits and hyphens. For
        droa the chosen checkpoint is copied from the local bucket into DRoA's upload bucket (sign-in as
        DR_DROA_USERNAME; the password is asked for, or read with --password-stdin); for aws-console the
        model must already be uploaded (drtransfer upload) and DR_UPLOAD_S3_ROLE set.

        \b
        Examples:
          drtransfer import run-0.env run-1.env --to droa --wait
          echo "$PASSWORD" | drtransfer import --experiment fast --password-stdin -b
          drtransfer import run.env --to aws-console --name my-model-3
        """
        sys.exit(run_import(kwargs))

    @cli.command("logout")
    @click.option("--disable-plugin", "disabled_plugins", multiple=True, metavar="NAME",
                  help="Do not load this plugin (repeatable; also DRTRANSFER_DISABLE_PLUGINS).")
    @app.handle_errors
    def logout(disabled_plugins: Sequence[str]) -> None:
        """Forget every cached DRoA sign-in (the temporary credentials kept after signing in)."""
        host = app.build_host(disabled_plugins)
        removed = 0
        for registration in host.importers():
            forget = getattr(registration.value, "logout", None)
            if callable(forget):
                removed += len(forget(ImportOptions()))
        click.echo(f"Removed {removed} cached sign-in(s).")
