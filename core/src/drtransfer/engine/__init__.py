"""The transfer engine: run many models' plans at once over a pool of worker processes.

Public API (used by the upload command, the import and packaging plugins, and the benchmarks)::

    results = run_transfer(plans, endpoints, EngineSettings(processes=2), subscribers=[...])

See ``docs/engine.md`` for strategies, verification, resume and fault handling.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drtransfer.endpoints import Endpoint
from drtransfer.operations import ModelPlan, ModelResult, Operation, OperationResult

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class EngineSettings:
    """How the engine runs.

    processes: worker processes (0 = everything in this process, for debugging and tests).
    concurrency: concurrent requests per process.
    part_size: bytes per part of a multipart copy (streamed or server-side).
    multipart_threshold: objects above this are streamed cross-endpoint as ranged GETs + UploadParts.
    copy_threshold: same-endpoint objects above this use UploadPartCopy (always above 5 GiB).
    dry_run: go through the whole path but swap every write and delete for a "dry-run" result.
    """

    processes: int = os.cpu_count() or 1
    concurrency: int = 10
    part_size: int = 8 * MiB
    multipart_threshold: int = 16 * MiB
    copy_threshold: int = 5 * GiB
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    start_method: str | None = None
    dry_run: bool = False


class TransferSubscriber:
    """Receives engine events in the parent process; override what you need. Progress may be negative
    (bytes rewound by a retry)."""

    def on_start(self, plans: Sequence[ModelPlan]) -> None:
        """Called once before any operation runs."""

    def on_progress(self, model_id: str, delta: int) -> None:
        """``delta`` bytes of ``model_id`` moved (negative when a retry rewinds)."""

    def on_retry(self, model_id: str, operation: Operation, attempt: int, error: str) -> None:
        """An operation failed and will be tried again."""

    def on_operation(self, model_id: str, result: OperationResult) -> None:
        """One operation finished (copied, put, deleted, skipped, failed or dry-run)."""

    def on_model_done(self, result: ModelResult) -> None:
        """Every operation of one model finished."""


def run_transfer(
    plans: Sequence[ModelPlan],
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings | None = None,
    subscribers: Sequence[TransferSubscriber] = (),
) -> list[ModelResult]:
    """Execute ``plans`` and return one result per plan, in the same order.

    Raises :class:`drtransfer.errors.Interrupted` on Ctrl-C / SIGTERM after aborting every multipart
    upload it started.
    """
    raise NotImplementedError("the transfer engine is being built")


__all__ = ["EngineSettings", "GiB", "MiB", "TransferSubscriber", "run_transfer"]
