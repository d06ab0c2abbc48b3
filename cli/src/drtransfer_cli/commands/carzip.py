"""``drtransfer car-zip``: build the physical car's ``<name>.tar.gz`` for every run, upload and/or save it.

The flow (shared with DRfC's ``dr-upload-car-zip``, :mod:`drtransfer_cli.carzip_drfc`):

1. load the runs; check the upload buckets when uploading there (configuration errors, exit 2);
2. build every run's package through the ``car`` packager (from S3 or from the training container),
   the car's rules checked before anything is written; a run that fails is reported, the others go on;
3. show where each archive goes and ask once (DRfC's question) unless ``-f``;
4. write ``--output DIR/<name>.tar.gz`` and/or upload ``s3://DR_UPLOAD_S3_BUCKET/DR_UPLOAD_S3_PREFIX/
   <name>.tar.gz`` (``-L``: ``s3://DR_LOCAL_S3_BUCKET/DR_LOCAL_S3_MODEL_PREFIX/<name>.tar.gz``) through
   the transfer engine.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from drtransfer.errors import TransferError
from drtransfer.events import BatchFinished, BatchStarted, ModelFailed
from drtransfer.notifying import collect_notify_urls, open_notifications
from drtransfer.packaging import (
    CAR_FORMAT,
    Package,
    PackageOutcome,
    PackageRequest,
    archive_location,
    build_packages,
    built_event,
    get_packager,
    upload_packages,
    write_package,
)
from drtransfer.runconfig import RunConfig
from drtransfer_cli import app, options


@dataclass(frozen=True)
class CarZipWording:
    """How the command talks: drtransfer's words or DRfC's."""

    prog: str
    ready: str = "Ready to upload {file} to {url}"
    question: str = "Are you sure? [y/N] "
    refusal: str = "Aborted: nothing was uploaded."


DRTRANSFER_WORDING = CarZipWording(prog="drtransfer")
DRFC_WORDING = CarZipWording(prog="dr-upload-car-zip", refusal="Aborting.")


@dataclass(frozen=True)
class CarZipRequest:
    run_files: Sequence[Path]
    system_env: Path | None
    experiments: Sequence[str]
    all_experiments: Path | None
    checkpoint: str | None
    source: str = "s3"
    output: Path | None = None
    local_bucket: bool = False
    upload: bool = True
    force: bool = False
    overrides: Mapping[str, str] | None = None
    json_output: bool = False
    no_progress: bool = False
    verbose: bool = False
    disabled_plugins: Sequence[str] = ()
    notify_urls: Sequence[str] = ()


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
    started = time.monotonic()
    if not request.upload and request.output is None:
        raise click.UsageError("--no-upload needs --output DIR: otherwise the archives would go nowhere.")
    host = app.build_host(request.disabled_plugins)
    packager = get_packager(host, CAR_FORMAT)
    runs = load_car_runs(request)
    if request.upload and not request.local_bucket:
        from drtransfer.workflow import check_targets

        check_targets(runs)
    notifications = open_notifications(
        host,
        collect_notify_urls(request.notify_urls, os.environ, runs),
        verbose=request.verbose,
        stderr=sys.stderr,
    )
    try:
        notifications.emit(BatchStarted(command="car-zip", runs=[run.run_id for run in runs], bytes_planned=0))
        outcomes = build_packages(
            runs,
            PackageRequest(source=request.source, checkpoint=request.checkpoint),
            packager,
            host,
            on_event=notifications.emit,
        )
        _confirm(outcomes, request, wording)
        _deliver(outcomes, request)
        for outcome in outcomes:
            if outcome.package is not None:
                for location in outcome.locations:
                    notifications.emit(built_event(outcome.package, location))
            if outcome.error is not None:
                notifications.emit(ModelFailed(outcome.run.run_id, _destination(outcome, request), str(outcome.error)))
        failed = [o for o in outcomes if not o.ok]
        notifications.emit(
            BatchFinished(
                command="car-zip",
                succeeded=len(outcomes) - len(failed),
                failed=len(failed),
                bytes=sum(o.package.size for o in outcomes if o.ok and o.package is not None),
                seconds=time.monotonic() - started,
                failures=[f"{o.run.label}: {o.error}" for o in failed],
            )
        )
        _report(outcomes, request, time.monotonic() - started)
    finally:
        for line in notifications.close():
            click.echo(f"warning: notification failed: {line}", err=True)
    return app.EXIT_OK if all(o.ok for o in outcomes) else app.EXIT_FAILED


def _destination(outcome: PackageOutcome, request: CarZipRequest) -> str:
    if outcome.package is not None and request.upload:
        return archive_location(outcome.package, local_bucket=request.local_bucket).url
    return str(request.output) if request.output else outcome.run.target_url


def _confirm(outcomes: Sequence[PackageOutcome], request: CarZipRequest, wording: CarZipWording) -> None:
    lines: list[str] = []
    for outcome in outcomes:
        package = outcome.package
        if package is None:
            continue
        lines.extend(f"{outcome.run.label}: note: {note}" for note in package.notes)
        if request.upload:
            url = archive_location(package, local_bucket=request.local_bucket).url
            lines.append(wording.ready.format(file=package.filename, url=url) + f" ({package.explanation})")
    if request.upload and lines:
        app.confirm(lines, force=request.force, question=wording.question, refusal=wording.refusal)
    else:
        for line in lines:
            click.echo(line, err=True)


def _deliver(outcomes: Sequence[PackageOutcome], request: CarZipRequest) -> None:
    """Local files first (a failed upload still leaves them), then one engine run for every upload."""
    ready = [o for o in outcomes if o.ok]
    if request.output is not None:
        for outcome in ready:
            assert outcome.package is not None
            outcome.locations.append(str(write_package(outcome.package, request.output)))
    if not request.upload or not ready:
        return
    from drtransfer.locking import target_locks

    packages: list[Package] = [o.package for o in ready if o.package is not None]
    where = [archive_location(p, local_bucket=request.local_bucket) for p in packages]
    endpoints = [p.run.local if request.local_bucket else p.run.upload for p in packages]
    locks = [(e.url or "aws", w.url) for e, w in zip(endpoints, where, strict=True) if e is not None]
    # A few archives of ~20 MiB each: one PutObject per archive, in this process (no worker pool).
    settings = app.engine_settings(0, None, None)
    with target_locks(locks):
        results = upload_packages(packages, local_bucket=request.local_bucket, settings=settings)
    for outcome, location, result in zip(ready, where, results, strict=True):
        if result.status == "ok":
            outcome.locations.append(location.url)
        else:
            outcome.error = TransferError(f"Uploading {location.url} failed: {result.error}")


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
    }


def register(cli: click.Group) -> None:
    @cli.command("car-zip")
    @options.run_selection
    @options.checkpoint_choice
    @click.option(
        "--from",
        "source",
        type=click.Choice(["s3", "container"]),
        default="s3",
        show_default=True,
        help="Read the model from the local S3 bucket, or from the run's running SageMaker container.",
    )
    @click.option(
        "--output",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        help="Also write DIR/<name>.tar.gz.",
    )
    @click.option(
        "-L",
        "--local-bucket",
        is_flag=True,
        help="Upload to s3://DR_LOCAL_S3_BUCKET/DR_LOCAL_S3_MODEL_PREFIX/ instead of the upload bucket.",
    )
    @click.option("--no-upload", is_flag=True, help="Do not upload (use with --output).")
    @click.option("-f", "--force", is_flag=True, help="No confirmation question.")
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
        """
        checkpoint_given = kwargs["checkpoint_expr"] or kwargs["best"] or kwargs["checkpoint_number"] is not None
        checkpoint = options.resolve_checkpoint(
            kwargs.pop("checkpoint_expr"), kwargs.pop("best"), kwargs.pop("checkpoint_number")
        )
        request = CarZipRequest(
            checkpoint=checkpoint if checkpoint_given else None,
            upload=not kwargs.pop("no_upload"),
            **kwargs,
        )
        sys.exit(run_car_zip(request))
