"""Typed notification events, broadcast through the ``drtransfer_notify`` hook and to notifiers.

Each event is a small frozen dataclass with a ``name`` and :meth:`Event.properties` (JSON-ready). No
event carries a secret: URLs are ``s3://bucket/key`` or redacted, reasons are user-facing sentences.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


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


@dataclass(frozen=True)
class BatchStarted(Event):
    """A command started work on ``runs`` models, planning ``bytes_planned`` bytes."""

    name: ClassVar[str] = "batch_started"
    command: str
    runs: list[str]
    bytes_planned: int

    def summary(self) -> str:
        return f"{self.command}: started {len(self.runs)} model(s), {self.bytes_planned} bytes planned"


@dataclass(frozen=True)
class CheckpointSelected(Event):
    name: ClassVar[str] = "checkpoint_selected"
    run_id: str
    checkpoint: str
    explanation: str

    def summary(self) -> str:
        return f"run {self.run_id}: {self.explanation}"


@dataclass(frozen=True)
class ModelUploaded(Event):
    name: ClassVar[str] = "model_uploaded"
    run_id: str
    target: str
    bytes: int
    seconds: float
    skipped: int

    def summary(self) -> str:
        return (
            f"run {self.run_id}: uploaded to {self.target} "
            f"({self.bytes} bytes in {self.seconds:.1f} s, {self.skipped} already there)"
        )


@dataclass(frozen=True)
class ModelFailed(Event):
    name: ClassVar[str] = "model_failed"
    run_id: str
    target: str
    reason: str

    def summary(self) -> str:
        return f"run {self.run_id}: FAILED ({self.target}): {self.reason}"


@dataclass(frozen=True)
class ImportSubmitted(Event):
    name: ClassVar[str] = "import_submitted"
    run_id: str
    target: str
    model_name: str
    model_id: str

    def summary(self) -> str:
        return f"run {self.run_id}: import of {self.model_name!r} submitted to {self.target} (id {self.model_id})"


@dataclass(frozen=True)
class ImportFinished(Event):
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


@dataclass(frozen=True)
class CarPackageBuilt(Event):
    name: ClassVar[str] = "car_package_built"
    run_id: str
    package: str
    size: int
    location: str

    def summary(self) -> str:
        return f"run {self.run_id}: car package {self.package} ({self.size} bytes) at {self.location}"


@dataclass(frozen=True)
class BatchFinished(Event):
    name: ClassVar[str] = "batch_finished"
    command: str
    succeeded: int
    failed: int
    bytes: int
    seconds: float
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = (
            f"{self.command}: {self.succeeded} succeeded, {self.failed} failed, "
            f"{self.bytes} bytes in {self.seconds:.1f} s"
        )
        return head + "".join(f"\n  - {line}" for line in self.failures)


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
