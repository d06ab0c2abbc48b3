"""Shared click options, so every command spells them the same way.

Each decorator adds options whose values the command passes on to :class:`drtransfer_cli.app`
helpers; ``-b`` / ``-c N`` / ``--checkpoint`` resolve to one checkpoint expression.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from drtransfer.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "GIB": 1024**3,
}


class ByteSize(click.ParamType):  # type: ignore[type-arg]
    """``8MB``, ``16MiB``, ``1048576``: binary units, as awscli's s3 configuration reads them."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().replace(" ", "")
        number = text.rstrip("KMGIB")
        unit = text[len(number) :]
        try:
            size = int(float(number) * _UNITS[unit])
        except (KeyError, ValueError):
            self.fail(f"{value!r} is not a size; write e.g. 8MB or 8388608.", param, ctx)
        if size <= 0:
            self.fail(f"{value!r} must be positive.", param, ctx)
        return size


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


run_selection = compose(
    click.argument("run_files", nargs=-1, type=click.Path(path_type=Path), metavar="[RUN_FILE]..."),
    click.option(
        "--system-env", type=click.Path(path_type=Path), help="DRfC system.env (default: $DR_DIR/system.env)."
    ),
    click.option(
        "--experiment", "experiments", multiple=True, metavar="NAME", help="Use experiments/NAME/run.env (repeatable)."
    ),
    click.option(
        "--all-experiments",
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="Use every experiments/*/run.env under DIR.",
    ),
)

checkpoint_choice = compose(
    click.option(
        "--checkpoint",
        "checkpoint_expr",
        metavar="EXPR",
        help="Which checkpoint: last (default), best, step:N, metric:NAME, ... (see `drtransfer plugins`).",
    ),
    click.option(
        "-b", "--best", "best", is_flag=True, help="Best checkpoint instead of the last (= --checkpoint best)."
    ),
    click.option(
        "-c",
        "--checkpoint-number",
        "checkpoint_number",
        metavar="N",
        help="Checkpoint number N (= --checkpoint step:N).",
    ),
)

engine_options = compose(
    click.option(
        "--processes", type=click.IntRange(min=0), help="Worker processes (default: CPU count; 0 = in-process)."
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        help="Concurrent transfers per process (default 10); small objects get 3x as many requests.",
    ),
    click.option("--part-size", type=ByteSize(), help="Multipart part size (default 8MB)."),
)

# Commands whose bytes go through the engine (upload, backup, restore, import, car-zip): parsed by
# app.engine_settings, so a bad value is one sentence with exit code 2 like every other bad input.
bandwidth_option = click.option(
    "--bandwidth-limit",
    metavar="RATE",
    help="Cap the bytes per second written to the targets, for the whole run: 20MB/s, 500KB/s, 1048576 "
    "(KB = KiB = 1024 bytes, as in awscli; also DRTRANSFER_ENGINE=bandwidth_limit=RATE; default: none).",
)

# Where the engine's tasks run (upload only): a plugin's executor, e.g. a Ray cluster.
executor_options = compose(
    click.option(
        "--executor",
        metavar="NAME",
        help="Where the transfer's tasks run: local (default) or an executor plugin such as ray "
        "(also DRTRANSFER_EXECUTOR; see drtransfer plugins).",
    ),
    click.option(
        "--ray-address",
        metavar="ADDRESS|auto",
        help="The Ray cluster to join with --executor ray (also RAY_ADDRESS; default: auto).",
    ),
)

output_options = compose(
    click.option("--json", "json_output", is_flag=True, help="One JSON object per model per line on stdout."),
    click.option("--no-progress", is_flag=True, help="No progress bars."),
    click.option("-v", "--verbose", is_flag=True, help="Log each event and retry on stderr."),
)

plugin_options = compose(
    click.option(
        "--disable-plugin",
        "disabled_plugins",
        multiple=True,
        metavar="NAME",
        help="Do not load this plugin (repeatable; also DRTRANSFER_DISABLE_PLUGINS).",
    ),
    click.option(
        "--notify",
        "notify_urls",
        multiple=True,
        metavar="URL",
        help="Send notifications to URL (repeatable; also DRTRANSFER_NOTIFY).",
    ),
)


# DRfC's letters, one definition each, for every command that has them.
force_option = click.option("-f", "--force", is_flag=True, help="No confirmation question.")
prefix_option = click.option(
    "-p", "--prefix", metavar="PREFIX", help="Model prefix: source, metrics and target prefix become PREFIX (as DRfC)."
)
local_bucket_option = click.option(
    "-L",
    "--local-bucket",
    "--local-target",
    "local_bucket",
    is_flag=True,
    help="Upload into the local bucket (s3://DR_LOCAL_S3_BUCKET/...) instead of the upload bucket.",
)
import_name_option = click.option("-I", "--import-name", "--name", "import_name", metavar="NAME",
                                  help="Import with this name (one run only; default: its DR_UPLOAD_S3_PREFIX).")


reward_function_option = click.option(
    "--reward-function",
    "reward_function",
    metavar="PATH_OR_S3_URL",
    help="Upload this reward function instead of the model's: a local file, or s3://BUCKET/KEY on the local "
    "endpoint (needed with -p when PREFIX has no reward_function.py).",
)


def checkpoint_step(checkpoint_number: str | None) -> str | None:
    """``-c N`` as ``step:N``; N is read here (not by click) so the error names what the user typed."""
    if checkpoint_number is None:
        return None
    if not (checkpoint_number.isascii() and checkpoint_number.isdigit()):
        raise ConfigError(f"-c {checkpoint_number}: the checkpoint number must be a whole number >= 0, e.g. -c 12.")
    return f"step:{int(checkpoint_number)}"


def resolve_checkpoint(checkpoint_expr: str | None, best: bool, checkpoint_number: str | None) -> str:
    """One expression from ``--checkpoint``, ``-b`` and ``-c N``; more than one is a usage error."""
    given = [e for e in (checkpoint_expr, "best" if best else None, checkpoint_step(checkpoint_number)) if e]
    if len(given) > 1:
        raise click.UsageError(f"Choose one checkpoint: {' and '.join(given)} were both given.")
    return given[0] if given else "last"
