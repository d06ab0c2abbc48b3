"""Checkpoints of a DRfC model and ``model/deepracer_checkpoints.json``.

A checkpoint ``N_Step-M.ckpt`` is complete when its ``.data-00000-of-00001``, ``.index`` and ``.meta``
files and ``model_N.pb`` all exist. Checkpoint numbers are matched exactly (``N_Step-``), never as
DRfC's ``N*`` glob, which also takes 10, 11, 100 ...
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from drtransfer.operations import SourceObject

CHECKPOINT_SUFFIXES = (".data-00000-of-00001", ".index", ".meta")
_CHECKPOINT_FILE = re.compile(r"^(?P<n>\d+)_Step-(?P<m>\d+)\.ckpt(?P<suffix>\..+)$")
_PB_FILE = re.compile(r"^model_(?P<n>\d+)\.pb$")
_NAME = re.compile(r"^(?P<n>\d+)_Step-(?P<m>\d+)\.ckpt$")


@dataclass
class Checkpoint:
    """One checkpoint number with whatever files the listing found for it."""

    number: int
    step: int | None = None
    files: dict[str, SourceObject] = field(default_factory=dict)  # suffix or "pb" -> object

    @property
    def name(self) -> str:
        return f"{self.number}_Step-{self.step}.ckpt"

    @property
    def missing(self) -> list[str]:
        """File names this checkpoint still lacks, for messages."""
        out = [f"{self.name}{s}" for s in CHECKPOINT_SUFFIXES if s not in self.files]
        if "pb" not in self.files:
            out.append(f"model_{self.number}.pb")
        return out

    @property
    def complete(self) -> bool:
        return self.step is not None and not self.missing

    @property
    def size(self) -> int:
        return sum(obj.size for obj in self.files.values())


def group_checkpoints(model_objects: dict[str, SourceObject]) -> dict[int, Checkpoint]:
    """Group the objects directly under ``model/`` (keyed by file name) into checkpoints by number."""
    found: dict[int, Checkpoint] = {}
    for filename, obj in model_objects.items():
        if match := _CHECKPOINT_FILE.match(filename):
            number, step = int(match["n"]), int(match["m"])
            ckpt = found.setdefault(number, Checkpoint(number))
            if ckpt.step is None or step > ckpt.step:
                ckpt.step = step
            ckpt.files[match["suffix"]] = obj
        elif match := _PB_FILE.match(filename):
            found.setdefault(int(match["n"]), Checkpoint(int(match["n"]))).files["pb"] = obj
    return found


def parse_checkpoint_name(name: str) -> tuple[int, int] | None:
    """``"64_Step-170203.ckpt"`` -> ``(64, 170203)``; ``None`` when it is not a checkpoint name."""
    match = _NAME.match(name.strip())
    return (int(match["n"]), int(match["m"])) if match else None


@dataclass(frozen=True)
class CheckpointIndex:
    """The parsed ``deepracer_checkpoints.json``: the raw ``last`` and ``best`` entries."""

    last: dict[str, Any] | None
    best: dict[str, Any] | None

    @classmethod
    def parse(cls, raw: bytes, url: str) -> CheckpointIndex:
        from drtransfer.errors import ModelError

        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ModelError(
                f"{url} is not valid JSON ({error}); fix or delete it and let training rewrite it."
            ) from None
        if not isinstance(data, dict):
            raise ModelError(f"{url} must hold a JSON object with last_checkpoint and best_checkpoint.")
        entries: dict[str, dict[str, Any] | None] = {}
        for key in ("last_checkpoint", "best_checkpoint"):
            entry = data.get(key)
            if entry is None:
                entries[key] = None
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ModelError(f"{url}: {key} must be an object with a string 'name'.")
            if parse_checkpoint_name(entry["name"]) is None:
                raise ModelError(
                    f"{url}: {key} names {entry['name']!r}, which is not a checkpoint name like 12_Step-3456.ckpt."
                )
            entries[key] = entry
        if entries["last_checkpoint"] is None and entries["best_checkpoint"] is None:
            raise ModelError(f"{url} names neither a last nor a best checkpoint.")
        return cls(last=entries["last_checkpoint"], best=entries["best_checkpoint"])


@dataclass(frozen=True)
class Selection:
    """The checkpoint chosen for a model, why, and the entry written to the target's index."""

    checkpoint: Checkpoint
    explanation: str
    index_entry: dict[str, Any]
