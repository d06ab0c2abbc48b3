"""What every command shares: error handling and exit codes, the plugin host, loading runs, the
confirmation question, engine settings, whether to show progress (the view: progress.py) and JSON
lines."""

from __future__ import annotations

import functools
import json
import os
import select
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

import click

from drtransfer.engine import EngineSettings
from drtransfer.engine.throttle import parse_rate
from drtransfer.errors import ConfigError, DrTransferError, Interrupted
from drtransfer.jobs import Declined, Notifications
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.runconfig import RunConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

F = TypeVar("F", bound=Callable[..., Any])


def fail(error: DrTransferError, prog: str = "drtransfer") -> NoReturn:
    click.echo(f"{prog}: error: {error}", err=True)
    sys.exit(error.exit_code)


def handle_errors(function: F) -> F:
    """Turn our errors into one sentence on stderr and the documented exit code."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        prog = click.get_current_context().find_root().info_name or "drtransfer"
        try:
            return function(*args, **kwargs)
        except Declined as declined:  # the user's own answer, not an error: said as the command says it
            click.echo(str(declined), err=True)
            sys.exit(declined.exit_code)
        except DrTransferError as error:
            fail(error, prog)
        except KeyboardInterrupt:
            fail(Interrupted(), prog)

    return wrapper  # type: ignore[return-value]


def build_host(disabled: Sequence[str] = ()) -> PluginHost:
    return get_plugin_manager(disabled=disabled)


def load_runs(
    run_files: Sequence[Path],
    *,
    system_env: Path | None,
    experiments: Sequence[str],
    all_experiments: Path | None,
    overrides: Mapping[str, str] | None = None,
    local_target: bool = False,
    require_target: bool = True,
    increment: bool = False,
    reward_function: str | None = None,
) -> list[RunConfig]:
    """The runs of a command; ``require_target=False`` when nothing goes to the upload bucket;
    ``increment`` (``-1``) targets each run's incremented upload prefix. The warnings about the files
    read (:attr:`RunConfig.warnings`) are printed on stderr, each once, before any work starts."""
    from drtransfer.config import load_runs as load

    runs = load(
        list(run_files),
        system_env=system_env,
        experiments=list(experiments),
        all_experiments_dir=all_experiments,
        overrides=dict(overrides or {}),
        local_target=local_target,
        require_target=require_target,
        increment=increment,
        reward_function=reward_function,
    )
    if not runs:
        raise ConfigError("No run to work on; give RUN_FILEs, --experiment or activate a DRfC environment.")
    for line in run_warnings(runs):
        click.echo(f"warning: {line}", err=True)
    return runs


def run_warnings(runs: Sequence[RunConfig]) -> list[str]:
    """Every run's warnings in order, each once (runs sharing a system.env share its warnings)."""
    return list(dict.fromkeys(line for run in runs for line in run.warnings))


def notifications(urls: Sequence[str], *, verbose: bool, log_stream: TextIO | None = None) -> Notifications:
    """``--notify URL`` and ``-v`` (the log notifier prints every event on ``log_stream``, default
    stderr; the progress view gives one that prints above it)."""
    return Notifications(urls=tuple(urls), verbose=verbose, log_stream=log_stream or sys.stderr)


def warn_notification_failures(lines: Sequence[str], prog: str = "drtransfer") -> None:
    for line in lines:
        click.echo(f"{prog}: warning: notification failed: {line}", err=True)


def confirm(
    lines: Sequence[str],
    *,
    force: bool,
    question: str = "Are you sure? [y/N] ",
    refusal: str = "Aborting.",
    refusal_exit: int = EXIT_USAGE,
) -> None:
    """Ask once for everything; without a terminal and without -f, refuse. A "no" raises
    :class:`~drtransfer.jobs.Declined` with ``refusal`` (printed as it is) and ``refusal_exit``."""
    for line in lines:
        click.echo(line, err=True)
    if force:
        return
    if not sys.stdin.isatty():
        raise ConfigError("There is no terminal to ask for confirmation; pass -f to go ahead without the question.")
    try:
        answer = _ask(question).strip().lower()
    except (KeyboardInterrupt, EOFError):
        click.echo("", err=True)
        raise Interrupted("Interrupted at the question: nothing was written.") from None
    if answer not in ("y", "yes"):
        raise Declined(refusal, exit_code=refusal_exit)


def _ask(question: str) -> str:
    """``input(question)``, but waiting in short ``select`` slices: a Ctrl-C that the kernel hands to
    another thread of this process is then still raised here within a fraction of a second."""
    click.echo(question, nl=False)
    while not select.select([sys.stdin], [], [], 0.2)[0]:
        pass
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def rate(text: str) -> int:
    """Bytes per second from ``20MB/s`` and the like (see :func:`drtransfer.engine.throttle.parse_rate`);
    its name is the word DRTRANSFER_ENGINE's error uses ("... is not a valid rate.")."""
    return parse_rate(text)


ENGINE_ENV = "DRTRANSFER_ENGINE"
# Engine settings without a flag of their own, tunable through DRTRANSFER_ENGINE="name=value ..."
# (retries and timeouts for slow or flaky links; the fault tests and the soak benchmark use it too).
ENGINE_TUNABLES: dict[str, Callable[[str], Any]] = {
    "max_attempts": int,
    "stall_deadline": float,
    "client_max_attempts": int,
    "connect_timeout": float,
    "read_timeout": float,
    "retry_base_delay": float,
    "retry_max_delay": float,
    "abort_timeout": float,
    "multipart_threshold": int,
    "copy_threshold": int,
    "start_method": str,
    "data_path": str,
    "bandwidth_limit": rate,
    "small_requests": int,
}


def engine_tuning(environ: Mapping[str, str]) -> dict[str, Any]:
    """``DRTRANSFER_ENGINE="max_attempts=3 read_timeout=20"`` (spaces or commas) as EngineSettings fields."""
    tuning: dict[str, Any] = {}
    for item in environ.get(ENGINE_ENV, "").replace(",", " ").split():
        name, sep, value = item.partition("=")
        convert = ENGINE_TUNABLES.get(name)
        if not sep or convert is None:
            raise ConfigError(
                f"{ENGINE_ENV} holds {item!r}; write name=value pairs with any of: {', '.join(ENGINE_TUNABLES)}."
            )
        try:
            tuning[name] = convert(value)
        except ValueError:
            raise ConfigError(f"{ENGINE_ENV}: {name}={value!r} is not a valid {convert.__name__}.") from None
    return tuning


def engine_settings(
    processes: int | None,
    concurrency: int | None,
    part_size: int | None,
    *,
    dry_run: bool = False,
    bandwidth_limit: str | None = None,
) -> EngineSettings:
    """``bandwidth_limit``: ``--bandwidth-limit RATE`` as given (it wins over DRTRANSFER_ENGINE's)."""
    defaults = EngineSettings()
    tuning = engine_tuning(os.environ)
    if bandwidth_limit is not None:
        try:
            tuning["bandwidth_limit"] = parse_rate(bandwidth_limit)
        except ValueError as error:
            raise ConfigError(f"--bandwidth-limit: {error}.") from None
    threshold = tuning.pop("multipart_threshold", defaults.multipart_threshold)
    return EngineSettings(
        processes=defaults.processes if processes is None else processes,
        concurrency=concurrency or defaults.concurrency,
        part_size=part_size or defaults.part_size,
        multipart_threshold=max(threshold, part_size or 0),
        dry_run=dry_run,
        **tuning,
    )


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def wants_progress(no_progress: bool, json_output: bool) -> bool:
    return not no_progress and sys.stderr.isatty() and os.environ.get("TERM") != "dumb" and not json_output


def print_json(data: Mapping[str, Any]) -> None:
    click.echo(json.dumps(data, sort_keys=False, default=str))
