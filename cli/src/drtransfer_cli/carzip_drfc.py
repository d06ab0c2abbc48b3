"""``dr-upload-car-zip``: DRfC's command, same letters and wording, backed by ``drtransfer car-zip``.

DRfC (PR #213): ``[-b] [-f] [-L] [-p PREFIX]``; the car package is built from S3 (never from a
container), named after the upload prefix, and uploaded to ``s3://DR_UPLOAD_S3_BUCKET/
DR_UPLOAD_S3_PREFIX/<name>.tar.gz``, or with ``-L`` to ``s3://DR_LOCAL_S3_BUCKET/<model prefix>/``.
``-p PREFIX`` packages the model under PREFIX and, as ``dr-upload-model -p`` does, names and uploads
it under PREFIX too.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from drtransfer_cli import app, options
from drtransfer_cli.commands.carzip import DRFC_WORDING, CarZipRequest, run_car_zip
from drtransfer_cli.uploading import prefix_overrides


@click.command("dr-upload-car-zip", context_settings={"help_option_names": ["-h", "--help"]})
@options.run_selection
@click.option("-b", "--best", is_flag=True, help="Use the best checkpoint. Default is the last checkpoint.")
@click.option("-f", "--force", is_flag=True, help="Force. Do not ask for confirmation.")
@click.option("-L", "--local-bucket", is_flag=True, help="Upload the car zip to the local S3 bucket.")
@click.option("-p", "--prefix", metavar="PREFIX", help="Model prefix. Default: DR_LOCAL_S3_MODEL_PREFIX.")
@options.output_options
@options.plugin_options
@app.handle_errors
def upload_car_zip(best: bool, prefix: str | None, **kwargs: Any) -> None:
    """Build the physical car's <name>.tar.gz of the activated DRfC run (or of each RUN_FILE) and upload it.

    DRfC's switches: -b best checkpoint, -f force, -L local bucket, -p model prefix.
    """
    request = CarZipRequest(
        checkpoint="best" if best else None,
        source="s3",
        overrides=prefix_overrides(prefix),
        **kwargs,
    )
    sys.exit(run_car_zip(request, DRFC_WORDING))


def upload_car_zip_main() -> None:
    upload_car_zip(prog_name="dr-upload-car-zip")
