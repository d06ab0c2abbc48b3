"""``drtransfer demo``: the whole job on an embedded default, from a fresh clone.

Starts two SeaweedFS servers on 127.0.0.1 (a stand-in for DRfC's MinIO and one for the upload bucket)
in a temporary directory, seeds three runs from the real DRfC sample training plus generated checkpoints
of realistic size (one per network type), writes DRfC configuration files for them, uploads all three
with ``drtransfer upload`` (the same code path a user runs), prints the resulting tree and the time taken,
and stops the servers. ``--serve`` keeps them running instead and prints the lines that make a shell a
DRfC shell against them, until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import click

from drtransfer.endpoints import list_pages
from drtransfer.locals3 import SeaweedServer
from drtransfer_cli import app, options
from drtransfer_cli.demo_world import DEMO_RUNS, UPLOAD_BUCKET, DemoWorld, demo_world
from drtransfer_cli.uploading import UploadFlags, run_upload

SERVE_POLL_SECONDS = 1.0


def print_tree(server: SeaweedServer, bucket: str) -> None:
    client = server.client()
    click.echo(f"\ns3://{bucket}/ on the upload server:")
    for page in list_pages(client.list_objects_v2, Bucket=bucket):
        for item in page.get("Contents", []):
            click.echo(f"  {app.human_bytes(item['Size']):>10}  {item['Key']}")


def register(cli: click.Group) -> None:
    @cli.command("demo")
    @options.checkpoint_choice
    @options.engine_options
    @click.option(
        "--keep",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        help="Keep the servers' data and the DRfC files in DIR (with --serve: start again from DIR).",
    )
    @click.option(
        "--serve", is_flag=True, help="Keep the two servers running and print the shell set-up; Ctrl-C stops."
    )
    @click.option("--no-progress", is_flag=True, help="No progress bars.")
    @app.handle_errors
    def demo(
        checkpoint_expr: str | None,
        best: bool,
        checkpoint_number: str | None,
        processes: int | None,
        concurrency: int | None,
        part_size: int | None,
        keep: Path | None,
        serve: bool,
        no_progress: bool,
    ) -> None:
        """Upload three sample DRfC runs between two embedded SeaweedFS servers on 127.0.0.1.

        \b
        Examples:
          drtransfer demo                          # start, seed, upload, show the tree, stop
          drtransfer demo --serve --keep ~/drt-demo  # keep the servers running for your own commands
        """
        checkpoint = options.resolve_checkpoint(checkpoint_expr, best, checkpoint_number)
        started = time.monotonic()

        def log(message: str) -> None:
            click.echo(message, err=True)

        with tempfile.TemporaryDirectory(prefix="drtransfer-demo-") as tmp:
            root = keep or Path(tmp)
            log(f"Starting two SeaweedFS servers on 127.0.0.1 (data in {root}) ...")
            with demo_world(root, keep=keep is not None, log=log) as world:
                if serve:
                    _serve(world, kept=keep is not None)
                    return
                os.environ.update(world.files.environ)
                upload_started = time.monotonic()
                code = run_upload(
                    UploadFlags(
                        run_files=world.files.run_files,
                        system_env=world.files.system_env,
                        experiments=(),
                        all_experiments=None,
                        checkpoint=checkpoint,
                        force=True,
                        processes=processes,
                        concurrency=concurrency,
                        part_size=part_size,
                        no_progress=no_progress,
                    )
                )
                upload_seconds = time.monotonic() - upload_started
                print_tree(world.upload, UPLOAD_BUCKET)
        click.echo(
            f"\nUpload of 3 models took {upload_seconds:.1f} s; the whole demo {time.monotonic() - started:.1f} s."
        )
        sys.exit(code)


def _serve(world: DemoWorld, *, kept: bool) -> None:
    """Print the shell set-up and wait for Ctrl-C (or SIGTERM, or a server that stops by itself)."""
    shell = world.shell_file()
    runs = " ".join(path.name for path in world.files.run_files)
    click.echo(
        f"{'Restarted' if world.restarted else 'Serving'} the demo world. In another shell:\n\n"
        f"  source {shell}\n\n"
        f"That makes it a DRfC shell with run 0 activated (DR_CONFIG) in {world.drfc_dir}; try:\n"
        f"  drtransfer upload -d                 # the activated run\n"
        f"  drtransfer upload {runs} -f -b\n"
        f"  drtransfer car-zip run-1.env -f\n"
        + ("" if kept else "The data is thrown away at the end; keep it with --keep DIR.\n")
        + "Press Ctrl-C to stop the servers."
    )
    sys.stdout.flush()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while all(s.process is not None and s.process.poll() is None for s in (world.local, world.upload)):
            time.sleep(SERVE_POLL_SECONDS)
        click.echo("A demo server stopped by itself; stopping the other.", err=True)
    except KeyboardInterrupt:
        click.echo("Stopping the servers.", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


__all__ = ["DEMO_RUNS", "register"]
