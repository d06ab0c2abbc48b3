"""``dr-upload-model``: DRfC's command, same letters and wording, backed by ``drtransfer upload``."""

from __future__ import annotations

import sys
from typing import Any

import click

from drtransfer_cli import app
from drtransfer_cli.commands.upload import request_from, upload_command_options
from drtransfer_cli.uploading import DRFC_WORDING, run_upload


@click.command("dr-upload-model", context_settings={"help_option_names": ["-h", "--help"]})
@upload_command_options
@app.handle_errors
def upload_model(**kwargs: Any) -> None:
    """Upload the model of the activated DRfC run (or of each RUN_FILE) to DR_UPLOAD_S3_BUCKET.

    DRfC's switches: -f force, -w wipe, -d dry run, -b best, -c N checkpoint, -p prefix, -L local,
    -1 increment, -i / -I NAME import; --upload-prefix PREFIX sets the target prefix alone.

    \b
    Examples:
      dr-upload-model -b -f            # best checkpoint of the activated run, no question
      dr-upload-model -d -w            # dry run: every copy, put and delete, nothing written
      dr-upload-model -c 12 -1         # checkpoint 12 into the next DR_UPLOAD_S3_PREFIX (inc-7 -> inc-8)
      dr-upload-model -p old-model -I old-model-2   # another model prefix, imported under a new name
    """
    sys.exit(run_upload(request_from(kwargs), DRFC_WORDING))


def upload_model_main() -> None:
    upload_model(prog_name="dr-upload-model")
