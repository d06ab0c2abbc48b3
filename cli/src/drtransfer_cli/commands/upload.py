"""``drtransfer upload``: upload the chosen checkpoint of every run's model in the importable layout."""

from __future__ import annotations

import sys
from typing import Any

import click

from drtransfer_cli import app, options
from drtransfer_cli.commands.import_ import import_switches
from drtransfer_cli.uploading import UploadFlags, run_upload

upload_switches = options.compose(
    options.force_option,
    click.option(
        "-w",
        "--wipe",
        is_flag=True,
        help="Delete target objects under each target prefix that are not in the plan (car-zip's archive stays).",
    ),
    click.option("-d", "--dry-run", is_flag=True, help="Print every planned copy, put and delete; write nothing."),
    options.prefix_option,
    click.option(
        "--upload-prefix",
        metavar="PREFIX",
        help="Target prefix only, instead of DR_UPLOAD_S3_PREFIX; the source stays the run's (unlike -p).",
    ),
    options.reward_function_option,
    options.local_bucket_option,
    click.option(
        "-1",
        "--increment",
        is_flag=True,
        help="Upload into the incremented DR_UPLOAD_S3_PREFIX (inc-7 -> inc-8), written to the run file on success.",
    ),
    click.option(
        "-i", "--import", "import_requested", is_flag=True, help="Import each model, named after its upload prefix."
    ),
    options.import_name_option,
    import_switches,
)


def request_from(kwargs: dict[str, Any]) -> UploadFlags:
    checkpoint = options.resolve_checkpoint(
        kwargs.pop("checkpoint_expr"), kwargs.pop("best"), kwargs.pop("checkpoint_number")
    )
    return UploadFlags(checkpoint=checkpoint, local_target=kwargs.pop("local_bucket"), **kwargs)


# Every option of `drtransfer upload`, shared with `dr-upload-model`.
upload_command_options = options.compose(
    options.run_selection,
    options.checkpoint_choice,
    upload_switches,
    options.engine_options,
    options.bandwidth_option,
    options.executor_options,
    options.output_options,
    options.plugin_options,
)


def register(cli: click.Group) -> None:
    @cli.command("upload")
    @upload_command_options
    @app.handle_errors
    def upload(**kwargs: Any) -> None:
        """Upload the chosen checkpoint of every run's model to its upload bucket.

        Each RUN_FILE is a DRfC run.env (one run); with none, the activated DRfC environment is used.

        \b
        Examples:
          drtransfer upload run-0.env run-1.env run-2.env -f
          drtransfer upload --experiment fast --experiment slow -b
          drtransfer upload -d -w run.env          # show what would be copied and deleted
        """
        sys.exit(run_upload(request_from(kwargs)))
