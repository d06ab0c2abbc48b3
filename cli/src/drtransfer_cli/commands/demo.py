"""``drtransfer demo``: the whole job on an embedded default, from a fresh clone.

Starts two SeaweedFS servers on 127.0.0.1 (a stand-in for DRfC's MinIO and one for the upload bucket)
in a temporary directory, seeds three runs from the real DRfC sample training plus generated checkpoints
of realistic size (one per network type), writes DRfC configuration files for them, uploads all three
with ``drtransfer upload`` (the same code path a user runs), prints the resulting tree and the time taken,
and stops the servers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import seed_model, write_drfc_config
from drtransfer_cli import app, options
from drtransfer_cli.uploading import UploadFlags, run_upload

DEMO_RUNS = (  # run id, model prefix, network, checkpoints
    ("0", "rl-deepracer-sagemaker", "shallow", (3, 4, 5)),
    ("1", "fast-lane-ppo", "standard", (10, 11, 12)),
    ("2", "deep-reinvent", "deep", (20, 21, 22, 23)),
)


def print_tree(server: SeaweedServer, bucket: str) -> None:
    client = server.client()
    click.echo(f"\ns3://{bucket}/ on the upload server:")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            click.echo(f"  {app.human_bytes(item['Size']):>10}  {item['Key']}")


def register(cli: click.Group) -> None:
    @cli.command("demo")
    @options.checkpoint_choice
    @options.engine_options
    @click.option("--keep", type=click.Path(path_type=Path), help="Keep the servers' data in this directory.")
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
        no_progress: bool,
    ) -> None:
        """Upload three sample DRfC runs between two embedded SeaweedFS servers on 127.0.0.1."""
        checkpoint = options.resolve_checkpoint(checkpoint_expr, best, checkpoint_number)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="drtransfer-demo-") as tmp:
            root = keep or Path(tmp)
            click.echo(f"Starting two SeaweedFS servers on 127.0.0.1 (data in {root}) ...", err=True)
            kept = keep is not None
            with (
                SeaweedServer(root / "local-s3", keep_data=kept) as local,
                SeaweedServer(root / "upload-s3", keep_data=kept) as upload,
            ):
                local.create_bucket("bucket")
                upload.create_bucket("upload-bucket")
                click.echo(f"  local (MinIO stand-in): {local.url}\n  upload target:          {upload.url}", err=True)
                for run_id, prefix, network, numbers in DEMO_RUNS:
                    seeded = seed_model(local.client(), "bucket", prefix, checkpoints=numbers, network=network)
                    click.echo(
                        f"  seeded run {run_id}: s3://bucket/{prefix}/ ({network} network, "
                        f"{len(numbers)} checkpoints, {app.human_bytes(seeded.total_bytes)})",
                        err=True,
                    )
                files = write_drfc_config(
                    root / "drfc",
                    local_url=local.url,
                    local_keys=(local.access_key, local.secret_key),
                    local_bucket="bucket",
                    upload_url=upload.url,
                    upload_keys=(upload.access_key, upload.secret_key),
                    upload_bucket="upload-bucket",
                    runs=[(run_id, prefix, f"{prefix}-upload") for run_id, prefix, _, _ in DEMO_RUNS],
                )
                os.environ.update(files.environ)
                upload_started = time.monotonic()
                code = run_upload(
                    UploadFlags(
                        run_files=files.run_files,
                        system_env=files.system_env,
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
                print_tree(upload, "upload-bucket")
        click.echo(
            f"\nUpload of 3 models took {upload_seconds:.1f} s; the whole demo {time.monotonic() - started:.1f} s."
        )
        sys.exit(code)


__all__ = ["DEMO_RUNS", "register"]
