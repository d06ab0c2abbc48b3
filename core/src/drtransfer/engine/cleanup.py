"""The end of a failed or interrupted run: signals while the engine runs, then aborting every multipart upload
it started (and, after an interrupt, everything under the target roots) and removing the commit objects of
failed or interrupted models.

The requests themselves are :func:`drtransfer.engine.housekeeping.clean_up`'s, made once the executor has
stopped; this module decides what needs them and logs what could not be done.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine.dispatch import Inflight
from drtransfer.engine.housekeeping import clean_up
from drtransfer.engine.lifecycle import Lifecycle, ModelState, Phase
from drtransfer.engine.messages import CompleteDone, CompleteTask, Report, UploadRef, UploadStarted
from drtransfer.engine.settings import EngineSettings
from drtransfer.operations import ObjectLocation

log = logging.getLogger("drtransfer.engine")


class Terminated(BaseException):
    """SIGTERM arrived while the engine ran."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block (main thread only), like Ctrl-C does."""
    previous: Any = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum: int, frame: FrameType | None) -> None:
            raise Terminated

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_ignored(active: bool) -> Iterator[None]:
    """While cleaning up after an interrupt, a second Ctrl-C must not leave uploads behind."""
    ignored: dict[int, Any] = {}
    if active and threading.current_thread() is threading.main_thread():
        ignored = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in ignored.items():
            signal.signal(signum, handler)


def note_last_reports(
    reports: Sequence[Report], inflight: Mapping[int, Inflight], open_uploads: dict[str, UploadRef]
) -> None:
    """Account for the uploads that the reports arriving while the executor stopped started or completed."""
    for report in reports:
        if isinstance(report, UploadStarted):
            open_uploads[report.upload.upload_id] = report.upload
        elif isinstance(report, CompleteDone) and report.task_id in inflight:
            task = inflight[report.task_id].task
            if isinstance(task, CompleteTask):
                open_uploads.pop(task.upload.upload_id, None)


def clean_up_run(
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    lifecycle: Lifecycle,
    open_uploads: Mapping[str, UploadRef],
    *,
    interrupted: bool,
) -> None:
    """Abort the open uploads, sweep the roots that need it and remove commit objects; log what is left."""
    if settings.dry_run:
        return
    roots = sweep_roots(lifecycle.models, interrupted)
    removals = list(lifecycle.pending_removals)
    if interrupted:  # commit objects of models interrupted in their commit phase
        cut = [m for m in lifecycle.models if m.phase in (Phase.COMMIT, Phase.ROLLBACK)]
        removals += [t for m in cut for t in lifecycle.written_commits(m)]
    if not (open_uploads or roots or removals):
        return
    left = clean_up(endpoints, settings, list(open_uploads.values()), roots, removals)
    if left.uploads:
        log.error(
            "%d multipart upload(s) could not be aborted (%s); the next run sweeps them.", len(left.uploads), left.error
        )
    if left.removals:
        log.error(
            "%d commit object(s) of a failed model could not be deleted (%s): %s; the next run replaces them.",
            len(left.removals),
            left.error,
            ", ".join(t.url for t in left.removals),
        )


def sweep_roots(models: Sequence[ModelState], interrupted: bool) -> list[ObjectLocation]:
    """After an interrupt every root is swept; after a failure the roots of the failed models, as an upload
    whose creation answer was lost (server killed) is not among the open ones."""
    return [
        m.plan.target_root
        for m in models
        if interrupted or (m.result is not None and m.result.status == "failed" and not m.plan.fresh_target)
    ]
