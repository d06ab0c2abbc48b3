"""``drtransfer restore``: a backup (or an uploaded model) back into the local bucket as a training prefix."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from drtransfer.models.restore import RestoreRequest, restore
from drtransfer_cli import app, options
from drtransfer_cli.progress import ProgressView


def register(cli: click.Group) -> None:
    @cli.command("restore")
    @click.argument("backup_url", metavar="BACKUP_URL")
    @click.option("--as", "prefix", required=True, metavar="PREFIX", help="The local training prefix to restore into.")
    @click.option(
        "--run-file",
        type=click.Path(path_type=Path),
        help="The run whose local bucket and backup endpoint to use (default: --pretrained's file, else the "
        "activated DRfC environment).",
    )
    @click.option(
        "--system-env", type=click.Path(path_type=Path), help="DRfC system.env (default: $DR_DIR/system.env)."
    )
    @click.option("--overwrite", "--force", "overwrite", is_flag=True, help="Replace what PREFIX holds.")
    @click.option(
        "--pretrained",
        type=click.Path(path_type=Path),
        metavar="RUN_FILE",
        help="Also write DR_LOCAL_S3_PRETRAINED=True, _PREFIX and _CHECKPOINT into RUN_FILE.",
    )
    @click.option(
        "--checkpoint",
        default="last",
        show_default=True,
        metavar="best|last|N",
        help="DR_LOCAL_S3_PRETRAINED_CHECKPOINT for --pretrained.",
    )
    @options.engine_options
    @options.bandwidth_option
    @options.output_options
    @app.handle_errors
    def restore_command(
        backup_url: str,
        prefix: str,
        run_file: Path | None,
        system_env: Path | None,
        overwrite: bool,
        pretrained: Path | None,
        checkpoint: str,
        processes: int | None,
        concurrency: int | None,
        part_size: int | None,
        bandwidth_limit: str | None,
        json_output: bool,
        no_progress: bool,
        verbose: bool,
    ) -> None:
        """Restore BACKUP_URL (s3://BUCKET/PREFIX of a backup or an uploaded model) as --as PREFIX.

        \b
        Examples:
          drtransfer restore s3://my-bucket/backups/alpha --as alpha-2 --pretrained run.env
          drtransfer restore s3://my-bucket/alpha-up --as alpha-from-upload --run-file run.env
        """
        source = run_file or pretrained
        runs = app.load_runs(
            [source] if source else [], system_env=system_env, experiments=(), all_experiments=None,
            require_target=False,
        )  # fmt: skip
        if len(runs) != 1:
            raise click.UsageError("restore works with one run: give one --run-file.")
        request = RestoreRequest(
            runs[0], backup_url, prefix, overwrite=overwrite, pretrained=pretrained, checkpoint=checkpoint,
            engine=app.engine_settings(processes, concurrency, part_size, bandwidth_limit=bandwidth_limit),
        )  # fmt: skip
        progress = ProgressView({runs[0].key: prefix}) if app.wants_progress(no_progress, json_output) else None
        try:
            report = restore(request, subscribers=(progress,) if progress else ())
        finally:
            if progress:
                progress.close()
        if json_output:
            app.print_json(
                {
                    "source": report.source, "target": report.target, "kind": report.kind, "objects": report.objects,
                    "bytes": report.bytes, "status": report.result.status, "error": report.result.error,
                    "note": report.note, "pretrained": report.pretrained, "seconds": round(report.seconds, 3),
                }
            )  # fmt: skip
        elif report.ok:
            click.echo(f"{report.note}")
            click.echo(
                f"restored {report.source} as {report.target} ({report.objects} object(s), "
                f"{app.human_bytes(report.bytes)} in {report.seconds:.1f} s)"
            )
            for name, value in report.pretrained.items():
                click.echo(f"{pretrained}: {name}={value}")
        else:
            click.echo(f"restore FAILED: {report.result.error}", err=True)
        sys.exit(app.EXIT_OK if report.ok else app.EXIT_FAILED)
