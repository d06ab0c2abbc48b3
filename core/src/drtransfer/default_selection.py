"""Core's fallback checkpoint selector: ``last``, the DRfC default. It runs after every plugin."""

from __future__ import annotations

from drtransfer import hookimpl
from drtransfer.checkpoints import Selection
from drtransfer.inventory import ModelInventory
from drtransfer.runconfig import RunConfig


@hookimpl(trylast=True)
def drtransfer_select_checkpoint(expression: str, model: ModelInventory, run: RunConfig) -> Selection | None:
    if expression != "last":
        return None
    entry = model.require_index_entry("last")
    return model.selection_from_entry(entry, f"last: {entry['name']}")


@hookimpl(trylast=True)
def drtransfer_checkpoint_expressions() -> list[str]:
    return ["last: the last evaluated checkpoint in deepracer_checkpoints.json (the default)"]
