"""``drtransfer import``: import every run's model into a registered import target (the job is
:func:`drtransfer.jobs.import_models`), and ``drtransfer logout``: forget cached sign-ins.

:data:`import_switches`, :func:`secret_source` and :func:`report_imports` serve ``drtransfer upload -i`` too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from drtransfer.errors import ConfigError
from drtransfer.importing import ImportOptions, ImportResult, SecretSource
from drtransfer.jobs import ImportRequest, import_models
from drtransfer.runconfig import RunConfig
from drtransfer_cli import app, options
from drtransfer_cli.progress import ProgressView

import_switches = options.compose(
    click.option("--to", "import_target", metavar="TARGET",
                 help="Import target (`drtransfer plugins` lists them; default: the one each run's settings select)."),
    click.option("--wait", is_flag=True, help="Wait until each import is READY or failed, and report it."),
    click.option("--password-stdin", is_flag=True, help="Read the DRoA password from the first line of stdin."),
    click.option("--description", metavar="TEXT", help="Model description given to the import target."),
)


def secret_source(password_stdin: bool) -> SecretSource:
    """Passwords from one line of stdin (``--password-stdin``) or a hidden prompt on the terminal; each
    prompt is asked once per command and the answer kept in memory only."""
    answers: dict[str, str] = {}

    def ask(prompt: str) -> str:
        if prompt in answers:
            return answers[prompt]
        if password_stdin:
            value = sys.stdin.readline().rstrip("\r\n")
            if not value:
                raise ConfigError("--password-stdin was given, but stdin held no password line.")
        elif sys.stdin.isatty():
            value = click.prompt(prompt.rstrip(": "), hide_input=True, err=True)
        else:
            raise ConfigError("There is no terminal to ask for the password; pipe it in with --password-stdin.")
        answers[prompt] = value
        return value

    return ask


def warn(line: str) -> None:
    """What an importer accepts but its service would record differently from the model."""
    click.echo(f"warning: {line}", err=True)


def report_imports(results: Sequence[ImportResult], runs: Sequence[RunConfig], *, json_output: bool) -> None:
    """One line per import (stdout when it went through, stderr when not), or one JSON object each."""
    labels = {run.key: run.label for run in runs}
    for result in results:
        if json_output:
            app.print_json({"import": result.to_json()})
            continue
        label = labels.get(result.key or "", f"run {result.run_id}")
        click.echo(f"{label}: {result.summary()}", err=not result.ok)


def run_import(kwargs: dict[str, Any]) -> int:
    flags = ("checkpoint_expr", "best", "checkpoint_number")
    explicit_checkpoint = any(kwargs.get(k) not in (None, False) for k in flags)
    checkpoint = options.resolve_checkpoint(kwargs["checkpoint_expr"], kwargs["best"], kwargs["checkpoint_number"])
    host = app.build_host(kwargs["disabled_plugins"])
    # Importers that take the model from the upload bucket check it themselves: none is required here.
    runs = app.load_runs(kwargs["run_files"], system_env=kwargs["system_env"], experiments=kwargs["experiments"],
                         all_experiments=kwargs["all_experiments"], require_target=False)
    progress = None
    if app.wants_progress(kwargs["no_progress"], kwargs["json_output"]):
        progress = ProgressView({run.key: run.label for run in runs})
    request = ImportRequest(
        runs=runs,
        target=kwargs["import_target"],
        name=kwargs["import_name"],
        checkpoint=checkpoint,
        checkpoint_given=explicit_checkpoint,
        description=kwargs["description"],
        wait=kwargs["wait"],
        secret=secret_source(kwargs["password_stdin"]),
        warn=warn,
        engine=app.engine_settings(
            kwargs["processes"], kwargs["concurrency"], kwargs["part_size"], bandwidth_limit=kwargs["bandwidth_limit"]
        ),
        notifications=app.notifications(kwargs["notify_urls"], verbose=kwargs["verbose"]),
    )
    try:
        result = import_models(request, host=host, subscribers=[progress] if progress else [])
    finally:
        if progress:
            progress.close()
    app.warn_notification_failures(result.notification_failures)
    report_imports(result.results, runs, json_output=kwargs["json_output"])
    if not kwargs["json_output"]:
        failed = len(result.failed)
        click.echo(f"{len(result.results) - failed} of {len(result.results)} import(s) went through.",
                   err=bool(failed))
    return app.EXIT_OK if result.ok else app.EXIT_FAILED


def register(cli: click.Group) -> None:
    @cli.command("import")
    @options.run_selection
    @options.checkpoint_choice
    @import_switches
    @options.import_name_option
    @options.engine_options
    @options.bandwidth_option
    @options.output_options
    @options.plugin_options
    @app.handle_errors
    def import_command(**kwargs: Any) -> None:
        """Import every run's model into DRoA or the AWS DeepRacer console.

        Names default to each run's upload prefix and must be 1-64 letters, digits and hyphens. For
        droa the chosen checkpoint is copied from the local bucket into DRoA's upload bucket (sign-in as
        DR_DROA_USERNAME; the password is asked for, or read with --password-stdin); for aws-console the
        model must already be uploaded (drtransfer upload) and DR_UPLOAD_S3_ROLE set.

        \b
        Examples:
          drtransfer import run-0.env run-1.env --to droa --wait
          echo "$PASSWORD" | drtransfer import --experiment fast --password-stdin -b
          drtransfer import run.env --to aws-console --name my-model-3
        """
        sys.exit(run_import(kwargs))

    @cli.command("logout")
    @click.option("--disable-plugin", "disabled_plugins", multiple=True, metavar="NAME",
                  help="Do not load this plugin (repeatable; also DRTRANSFER_DISABLE_PLUGINS).")
    @app.handle_errors
    def logout(disabled_plugins: Sequence[str]) -> None:
        """Forget every cached DRoA sign-in (the temporary credentials kept after signing in)."""
        host = app.build_host(disabled_plugins)
        removed = 0
        for registration in host.importers():
            forget = getattr(registration.value, "logout", None)
            if callable(forget):
                removed += len(forget(ImportOptions()))
        click.echo(f"Removed {removed} cached sign-in(s).")
