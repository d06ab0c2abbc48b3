"""``drtransfer models``: one table (or JSON lines) of the models in the local bucket and in the backup
and upload locations the run files name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from drtransfer.models.catalog import CatalogRequest, CheckpointInfo, ModelEntry, catalog
from drtransfer_cli import app, options

COLUMNS = ("WHERE", "MODEL", "CKPTS", "BEST", "LAST", "SIZE", "CHANGED", "BACKED UP", "UPLOADED")


def _checkpoint(info: CheckpointInfo | None) -> str:
    if info is None:
        return "-"
    return f"{info.number} ({info.metric:.1f})" if info.metric is not None else str(info.number)


def row(entry: ModelEntry) -> tuple[str, ...]:
    backed = "-"
    if entry.backed_up is not None:
        backed = f"up to {entry.backed_up.checkpoint}" if entry.location == "local" else entry.backed_up.created[:10]
    elif entry.error:
        backed = "unfinished" if entry.location == "backup" else "?"
    return (
        entry.location,
        entry.url,
        str(len(entry.checkpoints)),
        _checkpoint(entry.best),
        _checkpoint(entry.last),
        app.human_bytes(entry.size),
        entry.last_change.strftime("%Y-%m-%d %H:%M") if entry.last_change else "-",
        backed,
        "yes" if entry.uploaded else "-",
    )


def table(entries: list[ModelEntry]) -> list[str]:
    rows = [COLUMNS, *(row(e) for e in entries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in rows]


def register(cli: click.Group) -> None:
    @cli.command("models")
    @options.run_selection
    @click.option("--json", "json_output", is_flag=True, help="One JSON object per model per line on stdout.")
    @click.option("--no-backups", is_flag=True, help="Leave the backup locations out.")
    @click.option("--no-uploads", is_flag=True, help="Leave the upload prefixes out.")
    @app.handle_errors
    def models(
        run_files: tuple[Path, ...],
        system_env: Path | None,
        experiments: tuple[str, ...],
        all_experiments: Path | None,
        json_output: bool,
        no_backups: bool,
        no_uploads: bool,
        **_: Any,
    ) -> None:
        """List the models of the local bucket and of the runs' backup and upload locations.

        BEST and LAST show the checkpoint number and its avg_eval_metric from deepracer_checkpoints.json;
        BACKED UP the highest checkpoint the backup manifest holds.

        \b
        Examples:
          drtransfer models run-0.env run-1.env
          drtransfer models --json | jq 'select(.location=="local")'
        """
        runs = app.load_runs(
            run_files, system_env=system_env, experiments=experiments, all_experiments=all_experiments,
            require_target=False,
        )  # fmt: skip
        entries = catalog(CatalogRequest(runs, backups=not no_backups, uploads=not no_uploads))
        if json_output:
            for entry in entries:
                app.print_json(entry.to_json())
            return
        for line in table(entries):
            click.echo(line)
