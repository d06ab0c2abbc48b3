"""``dr-upload-model``: DRfC's command, same letters and wording, backed by ``drtransfer upload``."""

from __future__ import annotations

import sys
from typing import Any

import click

from drtransfer.errors import ConfigError
from drtransfer_cli import app
from drtransfer_cli.commands.backup import run_backup
from drtransfer_cli.commands.upload import request_from, upload_command_options
from drtransfer_cli.uploading import DRFC_WORDING, run_upload


@click.command("dr-upload-model", context_settings={"help_option_names": ["-h", "--help"]})
@upload_command_options
@click.option(
    "-A", "--all-files", "all_files", is_flag=True,
    help="Back up the whole training prefix instead (drtransfer backup): every checkpoint and file.",
)  # fmt: skip
@app.handle_errors
def upload_model(all_files: bool, **kwargs: Any) -> None:
    """Upload the model of the activated DRfC run (or of each RUN_FILE) to DR_UPLOAD_S3_BUCKET.

    DRfC's switches: -f force, -w wipe, -d dry run, -b best, -c N checkpoint, -p prefix, -L local,
    -1 increment, -i / -I NAME import, -A full backup; --upload-prefix PREFIX sets the target prefix alone.

    \b
    Examples:
      dr-upload-model -b -f            # best checkpoint of the activated run, no question
      dr-upload-model -d -w            # dry run: every copy, put and delete, nothing written
      dr-upload-model -c 12 -1         # checkpoint 12 into the next DR_UPLOAD_S3_PREFIX (inc-7 -> inc-8)
      dr-upload-model -p old-model -I old-model-2   # another model prefix, imported under a new name
      dr-upload-model -A -f         # full backup of the training prefix (drtransfer backup)
    """
    if all_files:
        sys.exit(backup_instead(kwargs))
    sys.exit(run_upload(request_from(kwargs), DRFC_WORDING))


# -A takes the run selection, -p, -f, -d and the engine and output switches; the others choose what an
# upload copies and mean nothing for a backup of everything.
_BACKUP_KEYS = (
    "run_files", "system_env", "experiments", "all_experiments", "prefix", "force", "dry_run", "processes",
    "concurrency", "part_size", "bandwidth_limit", "json_output", "no_progress", "verbose",
)  # fmt: skip


def backup_instead(kwargs: dict[str, Any]) -> int:
    ignored = {"disabled_plugins", "notify_urls"}
    given = [k for k, v in kwargs.items() if k not in _BACKUP_KEYS and k not in ignored and v not in (None, False, ())]
    if given:
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
        raise ConfigError(f"-A backs up every file of the prefix; {names} only apply to an upload, drop them.")
    return run_backup(**{k: kwargs[k] for k in _BACKUP_KEYS})


def upload_model_main() -> None:
    upload_model(prog_name="dr-upload-model")
