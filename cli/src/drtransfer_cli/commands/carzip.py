"""``drtransfer car-zip``: build every run's car package and upload and/or save it; shared with DRfC's
``dr-upload-car-zip`` (:mod:`drtransfer_cli.carzip_drfc`). The job is :func:`drtransfer.jobs.package_cars`;
this module builds its request from the flags, asks the question and prints the results.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from drtransfer.jobs import CarRequest, package_cars
from drtransfer.packaging import PackageOutcome, archive_location
from drtransfer.runconfig import RunConfig
from drtransfer_cli import app, options
from drtransfer_cli.prefixes import prefix_overrides


@dataclass(frozen=True)
class CarZipWording:
    """How the command talks: drtransfer's words or DRfC's."""

    prog: str
    ready: str = "Ready to upload {file} to {url}"
    question: str = "Are you sure? [y/N] "
    refusal: str = "Aborted: nothing was uploaded."
    refusal_exit: int = 2  # DRfC's own commands exit 1 on "Aborting."


DRTRANSFER_WORDING = CarZipWording(prog="drtransfer")
DRFC_WORDING = CarZipWording(prog="dr-upload-car-zip", refusal="Aborting.", refusal_exit=1)


@dataclass(frozen=True)
class CarZipRequest:
    run_files: Sequence[Path]
    system_env: Path | None
    experiments: Sequence[str]
    all_experiments: Path | None
    checkpoint: str | None
    source: str | None = None  # None: the packager's default source
    output: Path | None = None
    local_bucket: bool = False
    upload: bool = True
    force: bool = False
    overrides: Mapping[str, str] | None = None
    format: str = "car"
    json_output: bool = False
    no_progress: bool = False
    verbose: bool = False
    disabled_plugins: Sequence[str] = ()
    notify_urls: Sequence[str] = ()
    bandwidth_limit: str | None = None  # --bandwidth-limit RATE (the archive's upload)


def load_car_runs(request: CarZipRequest) -> list[RunConfig]:
    """The runs; an upload bucket is required only when packages go to it (not with -L or --no-upload)."""
    return app.load_runs(
        request.run_files,
        system_env=request.system_env,
        experiments=request.experiments,
        all_experiments=request.all_experiments,
        overrides=request.overrides,
        require_target=request.upload and not request.local_bucket,
    )


def run_car_zip(request: CarZipRequest, wording: CarZipWording = DRTRANSFER_WORDING) -> int:
    if not request.upload and request.output is None:
        raise click.UsageError("--no-upload needs --output DIR: otherwise the archives would go nowhere.")
    job = CarRequest(
        runs=load_car_runs(request),
        format=request.format,
        source=request.source,
        checkpoint=request.checkpoint,
        output=request.output,
        local_bucket=request.local_bucket,
        upload=request.upload,
        engine=app.engine_settings(0, None, None, bandwidth_limit=request.bandwidth_limit),
        notifications=app.notifications(request.notify_urls, verbose=request.verbose),
    )

    def confirm(ready: Sequence[PackageOutcome]) -> bool:
        app.confirm(_ready_lines(ready, request, wording), force=request.force, question=wording.question,
                    refusal=wording.refusal, refusal_exit=wording.refusal_exit)
        return True

    report = package_cars(job, host=app.build_host(request.disabled_plugins), confirm=confirm)
    if not request.upload:  # no question was asked: show the notes anyway
        for line in _ready_lines([o for o in report.outcomes if o.ok], request, wording):
            click.echo(line, err=True)
    _report(report.outcomes, request, report.seconds)
    app.warn_notification_failures(report.notification_failures, wording.prog)
    return app.EXIT_OK if report.ok else app.EXIT_FAILED


def _ready_lines(ready: Sequence[PackageOutcome], request: CarZipRequest, wording: CarZipWording) -> list[str]:
    lines: list[str] = []
    for outcome in ready:
        package = outcome.package
        if package is None:
            continue
        lines.extend(f"{outcome.run.label}: note: {note}" for note in package.notes)
        if request.upload:
            url = archive_location(package, local_bucket=request.local_bucket).url
            lines.append(wording.ready.format(file=package.filename, url=url) + f" ({package.explanation})")
    return lines


def _report(outcomes: Sequence[PackageOutcome], request: CarZipRequest, seconds: float) -> None:
    for outcome in outcomes:
        package, run = outcome.package, outcome.run
        if request.json_output:
            app.print_json(_outcome_json(outcome))
            continue
        if outcome.ok and package is not None:
            click.echo(
                f"{run.label}: {package.filename} ({app.human_bytes(package.size)}, {package.explanation}) -> "
                + ", ".join(outcome.locations)
            )
        else:
            click.echo(f"{run.label}: FAILED: {outcome.error}", err=True)
    if not request.json_output:
        failed = sum(1 for o in outcomes if not o.ok)
        click.echo(
            f"{len(outcomes) - failed} of {len(outcomes)} car package(s) built in {seconds:.1f} s.", err=bool(failed)
        )


def _outcome_json(outcome: PackageOutcome) -> dict[str, Any]:
    package = outcome.package
    return {
        "run_id": outcome.run.run_id,
        "key": outcome.run.key,
        "experiment": outcome.run.experiment,
        "source": package.origin if package else outcome.run.source_url,
        "checkpoint": package.checkpoint if package else None,
        "selection": package.explanation if package else None,
        "archive": package.filename if package else None,
        "bytes": package.size if package else 0,
        "members": [{"name": m.name, "size": m.size, "md5": m.md5} for m in package.members] if package else [],
        "locations": outcome.locations,
        "notes": list(package.notes) if package else [],
        "status": "ok" if outcome.ok else "failed",
        "error": str(outcome.error) if outcome.error else None,
        "warnings": list(outcome.run.warnings),
    }


def register(cli: click.Group) -> None:
    @cli.command("car-zip")
    @options.run_selection
    @options.checkpoint_choice
    @click.option(
        "--format",
        "format",
        default="car",
        show_default=True,
        metavar="NAME",
        help="Archive format (`drtransfer plugins` lists the registered ones).",
    )
    @click.option(
        "--from",
        "source",
        metavar="SOURCE",
        help="Where the format reads the model (car: s3, the default, or container: the running training "
        "container).",
    )
    @click.option(
        "--output",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        help="Also write DIR/<name>.tar.gz.",
    )
    @options.local_bucket_option
    @options.prefix_option
    @click.option("--no-upload", is_flag=True, help="Do not upload (use with --output).")
    @options.force_option
    @options.bandwidth_option
    @options.output_options
    @options.plugin_options
    @app.handle_errors
    def car_zip(**kwargs: Any) -> None:
        """Build the physical car's <name>.tar.gz (agent/model.pb + model_metadata.json) for every run.

        The archive is named after DR_UPLOAD_S3_PREFIX (letters, digits, '_' and '-' only: the car cuts
        names at the first dot) and uploaded to s3://DR_UPLOAD_S3_BUCKET/DR_UPLOAD_S3_PREFIX/<name>.tar.gz.
        Load it onto the car with the device console's upload, or from a USB stick's models/ folder.

        \b
        Examples:
          drtransfer car-zip run-0.env run-1.env -f             # last checkpoint, from S3
          drtransfer car-zip run.env --checkpoint best --output ./cars --no-upload
          drtransfer car-zip --from container -L                 # DRfC's original behaviour
          drtransfer car-zip -p my-old-model -b -f               # another model prefix, as DRfC's -p
        """
        checkpoint_given = kwargs["checkpoint_expr"] or kwargs["best"] or kwargs["checkpoint_number"] is not None
        checkpoint = options.resolve_checkpoint(
            kwargs.pop("checkpoint_expr"), kwargs.pop("best"), kwargs.pop("checkpoint_number")
        )
        request = CarZipRequest(
            checkpoint=checkpoint if checkpoint_given else None,
            upload=not kwargs.pop("no_upload"),
            overrides=prefix_overrides(kwargs.pop("prefix")),
            **kwargs,
        )
        sys.exit(run_car_zip(request))
