"""The command side of ``drtransfer upload`` and ``dr-upload-model`` (which differ only in spelling and
wording): flags to a :class:`drtransfer.jobs.UploadRequest`, the question, and the rendering of the job's
progress and results. The job itself is :func:`drtransfer.jobs.upload`."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from drtransfer.engine import TransferSubscriber
from drtransfer.engine.executor import ExecutorChoice
from drtransfer.errors import ConfigError
from drtransfer.jobs import ImportSpec, JobSubscriber, UploadRequest, upload
from drtransfer.operations import CopyObject, DeleteObject, ModelResult, Operation, OperationResult
from drtransfer.runconfig import RunConfig
from drtransfer.workflow import PreparedModel, UploadOutcome
from drtransfer_cli import app, progress
from drtransfer_cli.commands.import_ import report_imports, secret_source, warn
from drtransfer_cli.prefixes import prefix_overrides


@dataclass(frozen=True)
class Wording:
    """How a command talks: drtransfer's own words or DRfC's."""

    prog: str
    ready: str = "Ready to upload {count} model(s):"
    question: str = "Are you sure? [y/N] "
    refusal: str = "Aborted: nothing was uploaded."
    refusal_exit: int = 2  # DRfC's own commands exit 1 on "Aborting."
    dry_run_banner: str = "Dry run: nothing is written or deleted at any target."


DRTRANSFER_WORDING = Wording(prog="drtransfer")
DRFC_WORDING = Wording(
    prog="dr-upload-model",
    ready="Ready to upload model(s):",
    refusal="Aborting.",
    refusal_exit=1,
    dry_run_banner="*** DRYRUN MODE ***",
)


@dataclass(frozen=True)
class UploadFlags:
    """What the command line of ``drtransfer upload`` / ``dr-upload-model`` said."""

    run_files: Sequence[Path]
    system_env: Path | None
    experiments: Sequence[str]
    all_experiments: Path | None
    checkpoint: str
    force: bool = False
    wipe: bool = False
    dry_run: bool = False
    prefix: str | None = None
    upload_prefix: str | None = None
    reward_function: str | None = None
    local_target: bool = False
    increment: bool = False
    import_requested: bool = False
    import_name: str | None = None
    processes: int | None = None
    concurrency: int | None = None
    part_size: int | None = None
    bandwidth_limit: str | None = None
    executor: str | None = None
    ray_address: str | None = None
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
    """``-v``: prints each retry and each failed operation on stderr as it happens (the job counts the
    retries per model for ``--json``). ``labels`` maps run keys (the engine's model ids) to labels."""

    def __init__(
        self, labels: dict[str, str], *, verbose: bool, prog: str, echo: Callable[[str], None] | None = None
    ) -> None:
        self.labels = labels
        self.verbose = verbose
        self.prog = prog
        self.echo = echo or (lambda line: click.echo(line, err=True))  # the progress view prints above itself

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str, **kwargs: Any) -> None:
        if self.verbose:
            label = self.labels.get(model_id, model_id)
            self.echo(f"{self.prog}: {label}: retry {attempt} of {operation.target.url}: {error}")

    def on_operation(self, model_id: str, result: OperationResult, **kwargs: Any) -> None:
        if self.verbose and result.status == "failed":
            label = self.labels.get(model_id, model_id)
            self.echo(f"{self.prog}: {label}: {result.operation.target.url} failed: {result.error}")


def run_upload(flags: UploadFlags, wording: Wording = DRTRANSFER_WORDING) -> int:
    """Build the job's request from the flags and the environment, run it, print its results."""
    importing = flags.importing
    import_only = [
        flag
        for flag, given in (
            ("--to", flags.import_target),
            ("--wait", flags.wait),
            ("--password-stdin", flags.password_stdin),
            ("--description", flags.description),
        )
        if given
    ]
    if import_only and not importing:
        raise ConfigError(f"{', '.join(import_only)} only apply to an import: add -i or -I NAME, or drop them.")
    if importing and flags.local_target:
        raise ConfigError("Combination of -i and -L is not permitted: the import reads from the upload bucket.")
    if flags.upload_prefix is not None and flags.increment:
        raise ConfigError(
            f"--upload-prefix {flags.upload_prefix} and -1 both choose the upload prefix; drop one of them."
        )
    host = app.build_host(flags.disabled_plugins)
    runs = app.load_runs(
        flags.run_files,
        system_env=flags.system_env,
        experiments=flags.experiments,
        all_experiments=flags.all_experiments,
        overrides=prefix_overrides(flags.prefix, flags.upload_prefix),
        local_target=flags.local_target,
        increment=flags.increment,
        reward_function=flags.reward_function,
    )
    labels = {run.key: run.label for run in runs}
    view = None
    if app.wants_progress(flags.no_progress, flags.json_output) and not flags.dry_run:
        view = progress.ProgressView(progress.short_labels(runs))
    request = UploadRequest(
        runs=runs,
        checkpoint=flags.checkpoint,
        wipe=flags.wipe,
        dry_run=flags.dry_run,
        engine=app.engine_settings(
            flags.processes,
            flags.concurrency,
            flags.part_size,
            dry_run=flags.dry_run,
            bandwidth_limit=flags.bandwidth_limit,
        ),
        executor=ExecutorChoice.resolve(flags.executor, flags.ray_address),
        imports=ImportSpec(
            target=flags.import_target,
            name=flags.import_name,
            description=flags.description,
            wait=flags.wait,
            secret=secret_source(flags.password_stdin),
            warn=warn,
        )
        if importing
        else None,
        notifications=app.notifications(
            flags.notify_urls, verbose=flags.verbose, log_stream=progress.above(view) if view else None
        ),
    )
    retry_log = RetryLog(labels, verbose=flags.verbose, prog=wording.prog, echo=view.echo if view else None)
    subscribers: list[TransferSubscriber] = [retry_log]
    if view:
        subscribers.insert(0, view)
    if flags.dry_run:
        subscribers.append(DryRunBanner(wording))

    def confirm(prepared: Sequence[PreparedModel]) -> bool:
        app.confirm(ready_lines(prepared, wording, dry_run=False), force=flags.force, question=wording.question,
                    refusal=wording.refusal, refusal_exit=wording.refusal_exit)
        return True

    try:
        report_ = upload(request, host=host, confirm=confirm, subscribers=subscribers)
    finally:
        if view:
            view.close()
    report(report_.outcomes, flags, report_.seconds)
    if not flags.json_output:  # with --json each model's line carries its import result
        if flags.dry_run:
            for item in report_.imports:
                click.echo(f"{item.run.label}: would import as {item.name!r} into {item.target}")
        else:
            report_imports(report_.import_results, runs, json_output=False)
    app.warn_notification_failures(report_.notification_failures, wording.prog)
    return app.EXIT_OK if report_.ok else app.EXIT_FAILED


def ready_lines(
    prepared: Sequence[PreparedModel], wording: Wording, *, dry_run: bool, columns: int | None = None
) -> list[str]:
    """The plan, a few lines a model that fit the terminal (80 columns without one): the label with the
    size and the checkpoint, then source -> target (on two lines when one is too long)."""
    width = (columns or progress.terminal_columns(sys.stderr)) - 1
    lines = [wording.ready.format(count=len(prepared))]
    for item in prepared:
        if item.ok and item.selection is not None and item.plan is not None:
            head = f"  {item.run.label}: {app.human_bytes(item.plan.total_bytes)}"
            lines += [f"{head}, {item.selection.explanation}"]
            if len(lines[-1]) > width:  # the checkpoint on a line of its own rather than cut in two
                lines[-1:] = [head, *wrap(f"    {item.selection.explanation}", width)]
        else:
            lines += wrap(f"  {item.run.label}: cannot upload: {item.error}", width)
        route = f"    {source_text(item.run)} -> {item.run.target_url}"
        if len(route) > width:
            route = f"    from {source_text(item.run)}\n    to   {item.run.target_url}"
        lines += route.split("\n")
        if item.run.increment is not None:
            step = item.run.increment
            when = "left unchanged (dry run)" if dry_run else "written after a successful upload"
            lines += wrap(
                f"    -1: DR_UPLOAD_S3_PREFIX {step.old_value} -> {step.new_value} in {step.run_file}, {when}", width
            )
    return lines


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of ``width`` columns, continued under its first word; URLs and paths are never cut."""
    indent = " " * max(4, len(text) - len(text.lstrip()))
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    ) or [text]


def source_text(run: RunConfig) -> str:
    """The source URL, marked ``(default)`` when its prefix is DRfC's default rather than a setting."""
    return f"{run.source_url} (default)" if run.source_default else run.source_url


class DryRunBanner(JobSubscriber):
    """``-d``: no question is asked; the banner and the plan are shown when the batch starts."""

    def __init__(self, wording: Wording) -> None:
        self.wording = wording

    def on_prepared(self, prepared: Sequence[PreparedModel], **kwargs: Any) -> None:
        click.echo(self.wording.dry_run_banner, err=True)
        for line in ready_lines(prepared, self.wording, dry_run=True):
            click.echo(line, err=True)


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


def deleted_urls(result: ModelResult) -> list[str]:
    """The target objects ``-w`` deleted (in a dry run: would delete)."""
    return [
        r.operation.target.url
        for r in result.operations
        if isinstance(r.operation, DeleteObject) and r.status in ("deleted", "dry-run")
    ]


def kept_urls(item: PreparedModel) -> list[str]:
    """The car packages ``-w`` left in place."""
    return [f"s3://{item.run.upload_bucket}/{key}" for key in item.kept]


def outcome_json(outcome: UploadOutcome) -> dict[str, object]:
    item: PreparedModel = outcome.prepared
    result: ModelResult = outcome.result
    written = [r for r in result.operations if not isinstance(r.operation, DeleteObject)]
    data: dict[str, object] = {
        "run_id": item.run.run_id,
        "key": item.run.key,
        "experiment": item.run.experiment,
        "source": item.run.source_url,
        "source_default": item.run.source_default,
        "target": item.run.target_url,
        "checkpoint": item.selection.checkpoint.name if item.selection else None,
        "selection": item.selection.explanation if item.selection else None,
        "objects": sum(1 for r in written if r.status in ("copied", "put", "dry-run", "skipped")),
        "deleted": deleted_urls(result),
        "kept": kept_urls(item),
        "bytes": result.bytes,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "status": result.status,
        "error": result.error,
        "warnings": list(item.run.warnings),
    }
    data.update(outcome.extra)
    return data


def report(
    outcomes: Sequence[UploadOutcome],
    request: UploadFlags,
    seconds: float,
) -> None:
    """The results; each model's time is its own (the engine's, from its first request)."""
    for outcome in outcomes:
        if request.json_output:
            app.print_json(outcome_json(outcome))
            continue
        result, run = outcome.result, outcome.prepared.run
        deleted = deleted_urls(result)
        wiped = f", {len(deleted)} object(s) deleted" if request.wipe else ""
        if request.dry_run and outcome.prepared.ok:
            wipe_note = f" and delete {len(deleted)} object(s)" if request.wipe else ""
            click.echo(f"{run.label}: would write {run.target_url}/{wipe_note}")
            for op_result in result.operations:
                click.echo(describe_operation(op_result))
            for url in kept_urls(outcome.prepared):
                click.echo(f"  keep   {url} (car package written by drtransfer car-zip)")
            continue
        if result.status == "ok":
            click.echo(
                f"{run.label}: uploaded {run.target_url}/ ({app.human_bytes(result.bytes)} in "
                f"{result.seconds:.1f} s, "
                f"{result.skipped} object(s) already there{wiped})"
            )
        else:
            click.echo(f"{run.label}: FAILED: {result.error}", err=True)
            if deleted:
                click.echo(f"{run.label}: {len(deleted)} object(s) deleted before it failed", err=True)
        if request.verbose and not request.dry_run:
            for url in deleted:
                click.echo(f"{run.label}: deleted {url}", err=True)
            for url in kept_urls(outcome.prepared):
                click.echo(f"{run.label}: kept {url} (car package written by drtransfer car-zip)", err=True)
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
