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
from drtransfer_cli.prefixes import prefix_overrides


@click.command("dr-upload-car-zip", context_settings={"help_option_names": ["-h", "--help"]})
@options.run_selection
@options.checkpoint_choice
@options.force_option
@options.local_bucket_option
@options.prefix_option
@options.bandwidth_option
@options.output_options
@options.plugin_options
@app.handle_errors
def upload_car_zip(
    checkpoint_expr: str | None, best: bool, checkpoint_number: str | None, prefix: str | None, **kwargs: Any
) -> None:
    """Build the physical car's <name>.tar.gz of the activated DRfC run (or of each RUN_FILE) and upload it.

    DRfC's switches: -b best checkpoint, -c N checkpoint N, -f force, -L local bucket, -p model prefix;
    --bandwidth-limit RATE caps the archive's upload (as drtransfer car-zip).

    \b
    Examples:
      dr-upload-car-zip -f                  # last checkpoint of the activated run
      dr-upload-car-zip -b -f -L            # best checkpoint, into the local bucket
      dr-upload-car-zip -c 12 -p old-model  # checkpoint 12 of another model prefix
    """
    given = checkpoint_expr or best or checkpoint_number is not None
    request = CarZipRequest(
        checkpoint=options.resolve_checkpoint(checkpoint_expr, best, checkpoint_number) if given else None,
        source="s3",
        overrides=prefix_overrides(prefix),
        **kwargs,
    )
    sys.exit(run_car_zip(request, DRFC_WORDING))


def upload_car_zip_main() -> None:
    upload_car_zip(prog_name="dr-upload-car-zip")
