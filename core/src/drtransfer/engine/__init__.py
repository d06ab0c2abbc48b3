"""The transfer engine: run many models' plans at once over a pool of worker processes.

Public API (used by the upload command, the import and packaging plugins, and the benchmarks)::

    results = run_transfer(plans, endpoints, EngineSettings(processes=2), subscribers=[...])

See ``docs/engine.md`` for strategies, verification, resume and fault handling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine.executor import Executor
from drtransfer.engine.settings import EngineSettings, GiB, MiB
from drtransfer.operations import ModelPlan, ModelResult, Operation, OperationResult


class TransferSubscriber:
    """Receives engine events in the parent process; override what you need. Progress may be negative
    (bytes rewound by a retry). Every method takes ``**kwargs``: a later engine may pass more, and a
    subscriber written today keeps working."""

    def on_start(self, plans: Sequence[ModelPlan], **kwargs: Any) -> None:
        """Called once before any operation runs."""

    def on_progress(self, model_id: str, delta: int, **kwargs: Any) -> None:
        """``delta`` bytes of ``model_id`` moved (negative when a retry rewinds)."""

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str, **kwargs: Any) -> None:
        """An operation (or one of its parts) failed and will be tried again as ``attempt``.

        ``error`` is a few words when the endpoint is down, silent or throttling ("connection refused",
        "read timeout", "SlowDown": the engine waits for it, up to ``stall_deadline`` without progress),
        else the failure's sentence. Keyword arguments: ``delay``, seconds (float) until the next try
        (0.0 for a retry the S3 client already made; a success on the endpoint may start it sooner);
        ``endpoint``, the URL of the endpoint the failure came from (e.g. ``http://127.0.0.1:9000``).
        """

    def on_operation(self, model_id: str, result: OperationResult, **kwargs: Any) -> None:
        """One operation finished (copied, put, deleted, skipped, failed or dry-run)."""

    def on_model_done(self, result: ModelResult, **kwargs: Any) -> None:
        """Every operation of one model finished."""


def run_transfer(
    plans: Sequence[ModelPlan],
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings | None = None,
    subscribers: Sequence[TransferSubscriber] = (),
    executor: Executor | None = None,
) -> list[ModelResult]:
    """Execute ``plans`` and return one result per plan, in the same order.

    Raises :class:`drtransfer.errors.ConfigError` when an operation names an endpoint that is not in
    ``endpoints``, and :class:`drtransfer.errors.Interrupted` on Ctrl-C / SIGTERM after aborting every
    multipart upload it started. ``executor`` runs the worker tasks (None: processes on this machine;
    see :mod:`drtransfer.engine.executor`).
    """
    from drtransfer.engine.scheduler import run

    return run(plans, endpoints, settings or EngineSettings(), subscribers, executor)


__all__ = ["EngineSettings", "GiB", "MiB", "TransferSubscriber", "run_transfer"]
