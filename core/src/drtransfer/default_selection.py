"""Core's fallback checkpoint selector: ``last``, the DRfC default. It runs after every plugin.

Every other form (``best``, ``step:N``, ``metric:NAME``) comes from plugins, the built-in ones from
``drtransfer_plugins.checkpoints``; with all plugins disabled the tool still uploads the last checkpoint.
"""

from __future__ import annotations

import math
from typing import Any

from drtransfer import hookimpl
from drtransfer.checkpoints import Selection
from drtransfer.inventory import ModelInventory
from drtransfer.runconfig import RunConfig


def index_entry_explanation(expression: str, entry: dict[str, Any]) -> str:
    """``"best: 64_Step-170203.ckpt (avg_eval_metric 58.9)"``: one line for a checkpoint the index names."""
    metric = entry.get("avg_eval_metric", entry.get("avg_comp_pct"))  # avg_comp_pct: legacy console index
    if isinstance(metric, int | float) and not isinstance(metric, bool) and math.isfinite(metric):
        return f"{expression}: {entry['name']} (avg_eval_metric {metric:.1f})"
    return f"{expression}: {entry['name']} (avg_eval_metric n/a)"


@hookimpl(trylast=True)
def drtransfer_select_checkpoint(expression: str, model: ModelInventory, run: RunConfig) -> Selection | None:
    if expression != "last":
        return None
    entry = model.require_index_entry("last")
    return model.selection_from_entry(entry, index_entry_explanation("last", entry))


@hookimpl(trylast=True)
def drtransfer_checkpoint_expressions() -> list[str]:
    return ["last: the last evaluated checkpoint in deepracer_checkpoints.json (the default)"]
