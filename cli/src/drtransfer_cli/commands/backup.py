"""``drtransfer backup``: a full, incremental, verified copy of each run's training prefix (also
``dr-upload-model -A``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from drtransfer.models.backup import BackupOutcome, BackupRequest, PreparedBackup, backup
from drtransfer_cli import app, options
from drtransfer_cli.prefixes import prefix_overrides
from drtransfer_cli.progress import ProgressView

backup_options = options.compose(
    options.run_selection,
    options.force_option,
    click.option("-d", "--dry-run", is_flag=True, help="Show what would be copied; write nothing."),
    options.engine_options,
    options.bandwidth_option,
    options.output_options,
)


def run_backup(
    run_files: Sequence[Path],
    *,
    system_env: Path | None = None,
    experiments: Sequence[str] = (),
    all_experiments: Path | None = None,
    prefix: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    processes: int | None = None,
    concurrency: int | None = None,
    part_size: int | None = None,
    bandwidth_limit: str | None = None,
    json_output: bool = False,
    no_progress: bool = False,
    verbose: bool = False,
) -> int:
    runs = app.load_runs(
        run_files,
        system_env=system_env,
        experiments=experiments,
        all_experiments=all_experiments,
        overrides=prefix_overrides(prefix),
        require_target=False,
    )
    request = BackupRequest(
        runs, dry_run=dry_run,
        engine=app.engine_settings(processes, concurrency, part_size, dry_run=dry_run, bandwidth_limit=bandwidth_limit),
    )  # fmt: skip

    def confirm(prepared: Sequence[PreparedBackup]) -> bool:
        app.confirm(ready_lines(prepared), force=force, refusal="Aborted: nothing was backed up.")
        return True

    progress = None
    if app.wants_progress(no_progress, json_output) and not dry_run:
        progress = ProgressView({run.key: run.label for run in runs})
    try:
        report = backup(request, confirm=confirm, subscribers=[progress] if progress else [])
    finally:
        if progress:
            progress.close()
    for outcome in report.outcomes:
        if json_output:
            app.print_json(outcome_json(outcome))
        else:
            click.echo(outcome_line(outcome, dry_run=dry_run), err=outcome.result.status == "failed")
            if verbose or dry_run:
                for key in outcome.order:
                    click.echo(f"  {key}", err=not dry_run)
    return app.EXIT_OK if report.ok else app.EXIT_FAILED


def ready_lines(prepared: Sequence[PreparedBackup]) -> list[str]:
    lines = [f"Ready to back up {len(prepared)} model(s):"]
    for item in prepared:
        if item.error is not None:
            lines.append(f"  {item.run.label}: cannot back up: {item.error}")
            continue
        size = sum(op.size for op in item.plan.operations) if item.plan else 0
        lines.append(
            f"  {item.run.label}: {item.run.source_url}/ -> {item.target_url} ({item.copies} object(s), "
            f"{app.human_bytes(size)} to copy; {item.unchanged} unchanged)"
        )
    return lines


def outcome_line(outcome: BackupOutcome, *, dry_run: bool) -> str:
    item, result = outcome.prepared, outcome.result
    if result.status == "failed":
        return f"{item.run.label}: FAILED: {result.error}"
    if dry_run:
        copies = f"{item.copies} object(s)"
        return f"{item.run.label}: would copy {copies} to {item.target_url} ({item.unchanged} unchanged)"
    if item.plan is None or not item.plan.operations:
        return f"{item.run.label}: {item.target_url} is up to date ({item.unchanged} object(s), nothing copied)"
    return (
        f"{item.run.label}: backed up {item.target_url} ({item.copies} object(s) copied, "
        f"{app.human_bytes(result.bytes)} in {result.seconds:.1f} s, "
        f"{item.unchanged} unchanged, {result.skipped} already there)"
    )


def outcome_json(outcome: BackupOutcome) -> dict[str, Any]:
    item, result = outcome.prepared, outcome.result
    return {
        "run_id": item.run.run_id,
        "key": item.run.key,
        "source": f"{item.run.source_url}/",
        "target": item.target_url,
        "status": result.status,
        "copied": item.copies,
        "unchanged": item.unchanged,
        "skipped": result.skipped,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "order": outcome.order,
        "error": result.error,
    }


def register(cli: click.Group) -> None:
    @cli.command("backup")
    @backup_options
    @app.handle_errors
    def backup_command(**kwargs: Any) -> None:
        """Back up each run's whole training prefix to DR_BACKUP_S3_BUCKET/DR_BACKUP_S3_PREFIX.

        Every checkpoint, model/ index files, metrics, ip/, the yaml files, the reward function,
        simtraces and the run's custom files; only new or changed objects are copied, and the manifest
        drtransfer-backup.json is written last.

        \b
        Examples:
          drtransfer backup run-0.env run-1.env run-2.env -f
          drtransfer backup -d run.env        # what would be copied
        """
        sys.exit(run_backup(**kwargs))
