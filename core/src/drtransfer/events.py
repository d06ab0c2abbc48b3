"""Typed notification events, broadcast through the ``drtransfer_notify`` hook and to notifiers.

Each event is a small frozen dataclass with a ``name``, :meth:`Event.properties` (JSON-ready),
:meth:`Event.summary` (one human line), :meth:`Event.details` (further lines, e.g. the failures of a
batch) and :meth:`Event.level` (``info``, ``success``, ``warning`` or ``failure``: chat colours and
apprise's notification type). No event carries a secret: URLs are ``s3://bucket/key`` or redacted,
reasons are user-facing sentences.

Per-run events carry ``run_id`` (DRfC's ``DR_RUN_ID``, which runs may share); all but ``import_finished``
also carry ``experiment`` (the experiment name, empty for other run files), and their summaries name the
experiment when there is one. ``import_finished`` names the model instead.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Level = Literal["info", "success", "warning", "failure"]


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 KiB``: sizes in summaries (properties keep exact byte counts)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _who(run_id: str, experiment: str) -> str:
    return f"experiment {experiment}" if experiment else f"run {run_id}"


@dataclass(frozen=True)
class Event:
    name: ClassVar[str] = "event"
    created: float = field(default_factory=time.time, kw_only=True)

    def properties(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("created", None)
        return data

    def summary(self) -> str:
        """One human line, used by the log notifier and chat presets."""
        return f"{self.name}: " + ", ".join(f"{k}={v}" for k, v in self.properties().items())

    def details(self) -> list[str]:
        """Further human lines (none for most events)."""
        return []

    def level(self) -> Level:
        return "info"


@dataclass(frozen=True)
class BatchStarted(Event):
    """A command started work on ``runs`` models (each run's key: its DR_RUN_ID unless runs share one),
    planning ``bytes_planned`` bytes."""

    name: ClassVar[str] = "batch_started"
    command: str
    runs: list[str]
    bytes_planned: int

    def summary(self) -> str:
        return f"{self.command}: started {len(self.runs)} model(s), {human_size(self.bytes_planned)} planned"


@dataclass(frozen=True)
class CheckpointSelected(Event):
    """The checkpoint selector chose ``checkpoint`` for a run; ``explanation`` says why."""

    name: ClassVar[str] = "checkpoint_selected"
    run_id: str
    checkpoint: str
    explanation: str
    experiment: str = ""

    def summary(self) -> str:
        return f"{_who(self.run_id, self.experiment)}: checkpoint {self.checkpoint} ({self.explanation})"


@dataclass(frozen=True)
class ModelUploaded(Event):
    """A model reached ``target``: ``bytes`` written in ``seconds``, ``skipped`` objects already there."""

    name: ClassVar[str] = "model_uploaded"
    run_id: str
    target: str
    bytes: int
    seconds: float
    skipped: int
    experiment: str = ""

    def summary(self) -> str:
        return (
            f"{_who(self.run_id, self.experiment)}: uploaded to {self.target} "
            f"({human_size(self.bytes)} in {self.seconds:.1f} s, {self.skipped} object(s) already there)"
        )

    def level(self) -> Level:
        return "success"


@dataclass(frozen=True)
class ModelFailed(Event):
    """A model could not be transferred; ``reason`` is the one-sentence error."""

    name: ClassVar[str] = "model_failed"
    run_id: str
    target: str
    reason: str
    experiment: str = ""

    def summary(self) -> str:
        return f"{_who(self.run_id, self.experiment)}: FAILED ({self.target}): {self.reason}"

    def level(self) -> Level:
        return "failure"


@dataclass(frozen=True)
class ImportSubmitted(Event):
    """An import of a model was submitted to an import target (``--to``)."""

    name: ClassVar[str] = "import_submitted"
    run_id: str
    target: str
    model_name: str
    model_id: str
    experiment: str = ""

    def summary(self) -> str:
        who = _who(self.run_id, self.experiment)
        return f"{who}: import of {self.model_name!r} submitted to {self.target} (id {self.model_id})"


_FAILED_STATUSES = ("fail", "error", "reject", "cancel")


@dataclass(frozen=True)
class ImportFinished(Event):
    """An import ended with ``status`` (the target's own word, e.g. ``READY`` or ``FAILED``)."""

    name: ClassVar[str] = "import_finished"
    run_id: str
    target: str
    model_name: str
    model_id: str
    status: str
    message: str = ""

    def summary(self) -> str:
        tail = f": {self.message}" if self.message else ""
        return f"run {self.run_id}: import of {self.model_name!r} on {self.target} is {self.status}{tail}"

    def level(self) -> Level:
        status = self.status.lower()
        return "failure" if any(word in status for word in _FAILED_STATUSES) else "success"


@dataclass(frozen=True)
class CarPackageBuilt(Event):
    """A car package (``package``, ``size`` bytes) was written to ``location``."""

    name: ClassVar[str] = "car_package_built"
    run_id: str
    package: str
    size: int
    location: str
    experiment: str = ""

    def summary(self) -> str:
        who = _who(self.run_id, self.experiment)
        return f"{who}: car package {self.package} ({human_size(self.size)}) at {self.location}"

    def level(self) -> Level:
        return "success"


@dataclass(frozen=True)
class BatchFinished(Event):
    """A command ended: counts, bytes, seconds and one line per failed model."""

    name: ClassVar[str] = "batch_finished"
    command: str
    succeeded: int
    failed: int
    bytes: int
    seconds: float
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.command}: {self.succeeded} succeeded, {self.failed} failed, "
            f"{human_size(self.bytes)} in {self.seconds:.1f} s"
        )

    def details(self) -> list[str]:
        return list(self.failures)

    def level(self) -> Level:
        if self.failed == 0:
            return "success"
        return "failure" if self.succeeded == 0 else "warning"


ALL_EVENTS: tuple[type[Event], ...] = (
    BatchStarted,
    CheckpointSelected,
    ModelUploaded,
    ModelFailed,
    ImportSubmitted,
    ImportFinished,
    CarPackageBuilt,
    BatchFinished,
)

EVENT_NAMES: frozenset[str] = frozenset(event.name for event in ALL_EVENTS)
