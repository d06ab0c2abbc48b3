"""``drtransfer prune``: delete old checkpoints from the local training prefix, only those a verified
backup holds; a dry run unless ``--yes``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from drtransfer.models.prune import PrunePlan, PruneRequest, prune
from drtransfer_cli import app, options


def plan_json(plan: PrunePlan, deleted: bool) -> dict[str, Any]:
    result = plan.result
    return {
        "run_id": plan.run.run_id,
        "key": plan.run.key,
        "source": f"{plan.run.source_url}/",
        "backup": plan.backup_url,
        "delete": plan.delete,
        "kept": {str(n): why for n, why in sorted(plan.kept.items())},
        "freed": plan.freed if (deleted and result is not None and result.status == "ok") else 0,
        "would_free": plan.freed,
        "status": (result.status if result is not None else ("ok" if deleted else "dry-run")),
        "error": result.error if result is not None else None,
    }


def register(cli: click.Group) -> None:
    @cli.command("prune")
    @options.run_selection
    @click.option(
        "--keep", type=click.IntRange(min=0), required=True, metavar="N", help="Keep the N newest checkpoints."
    )
    @click.option("--yes", is_flag=True, help="Delete; without it, only show what would be deleted.")
    @options.engine_options
    @click.option("--json", "json_output", is_flag=True, help="One JSON object per run per line on stdout.")
    @app.handle_errors
    def prune_command(
        run_files: tuple[Path, ...],
        system_env: Path | None,
        experiments: tuple[str, ...],
        all_experiments: Path | None,
        keep: int,
        yes: bool,
        processes: int | None,
        concurrency: int | None,
        part_size: int | None,
        json_output: bool,
    ) -> None:
        """Delete old checkpoints from each run's local training prefix, only those verified in the run's
        backup manifest; the best, the last and the N newest are always kept.

        \b
        Examples:
          drtransfer prune run.env --keep 2          # what would be deleted, and the space freed
          drtransfer prune run.env --keep 2 --yes
        """
        runs = app.load_runs(
            run_files, system_env=system_env, experiments=experiments, all_experiments=all_experiments,
            require_target=False,
        )  # fmt: skip
        engine = app.engine_settings(processes, concurrency, part_size)
        report = prune(PruneRequest(runs, keep, delete=yes, engine=engine))
        for plan in report.plans:
            if json_output:
                app.print_json(plan_json(plan, yes))
                continue
            verb = "deleted" if yes else "would delete"
            numbers = ", ".join(map(str, plan.delete)) or "nothing"
            failed = plan.result is not None and plan.result.status != "ok"
            if failed:
                click.echo(f"{plan.run.label}: FAILED: {plan.result.error if plan.result else ''}", err=True)
            else:
                click.echo(f"{plan.run.label}: {verb} checkpoint(s) {numbers}, freeing {app.human_bytes(plan.freed)}")
            for number, why in sorted(plan.kept.items()):
                click.echo(f"  kept {number}: {why}")
        if not yes and not json_output:
            click.echo("Dry run: nothing was deleted; add --yes to delete.", err=True)
        sys.exit(app.EXIT_OK if report.ok else app.EXIT_FAILED)
