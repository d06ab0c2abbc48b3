"""The built-in checkpoint selectors: ``best``, ``step:N`` and ``metric:NAME``.

Each answers through ``drtransfer_select_checkpoint`` with a one-line explanation and returns ``None``
for expressions that are not its own (core's fallback answers ``last``). A malformed expression of
ours (``step:x``, ``metric:unknown``) is a ConfigError naming the valid forms, raised before the model
is looked at; a well-formed one that this model cannot satisfy is a ModelError.
"""

from __future__ import annotations

import re

from drtransfer import hookimpl
from drtransfer.checkpoints import Selection
from drtransfer.default_selection import index_entry_explanation
from drtransfer.errors import ConfigError, ModelError
from drtransfer.inventory import ModelInventory
from drtransfer.operations import SourceObject
from drtransfer_plugins.checkpoints.metrics import METRICS, best_evaluation, evaluations_by_checkpoint

_STEP = re.compile(r"^step:(\d+)$")
TRAINING_METRICS = "TrainingMetrics.json"

EXPRESSIONS = [
    "best: the best checkpoint in deepracer_checkpoints.json (DR_TRAIN_BEST_MODEL_METRIC)",
    "step:N: checkpoint number N (as -c N)",
    "metric:NAME: the complete checkpoint whose evaluation scored best in metrics/TrainingMetrics.json, "
    f"NAME one of {', '.join(METRICS)}",
]


def _malformed(expression: str, hint: str) -> ConfigError:
    return ConfigError(
        f"Malformed checkpoint expression {expression!r}: {hint}; valid forms: best, step:N, metric:NAME."
    )


@hookimpl
def drtransfer_checkpoint_expressions() -> list[str]:
    return list(EXPRESSIONS)


@hookimpl
def drtransfer_select_checkpoint(expression: str, model: ModelInventory) -> Selection | None:
    if expression == "best":
        entry = model.require_index_entry("best")
        return model.selection_from_entry(entry, index_entry_explanation("best", entry))
    if expression.startswith("step:"):
        match = _STEP.match(expression)
        if match is None:
            raise _malformed(expression, "step:N takes a checkpoint number such as step:12")
        ckpt = model.checkpoint(int(match[1]))
        return model.selection_of(ckpt, f"{expression}: {ckpt.name}")
    if expression.startswith("metric:"):
        name = expression.removeprefix("metric:")
        if name not in METRICS:
            raise _malformed(expression, f"metric:NAME takes NAME one of {', '.join(METRICS)}")
        return select_by_metric(expression, name, model)
    return None


def training_metrics_object(model: ModelInventory) -> SourceObject:
    """Worker 0's ``TrainingMetrics.json`` directly under the run's metrics prefix (DRfC's key)."""
    key = f"{model.run.metrics_prefix.strip('/')}/{TRAINING_METRICS}"
    for obj in model.metrics:
        if obj.location.key == key:
            return obj
    raise ModelError(
        f"metric: selection needs s3://{model.run.local_bucket}/{key}, which is missing; "
        f"choose the checkpoint with best, last or step:N instead."
    )


def select_by_metric(expression: str, name: str, model: ModelInventory) -> Selection:
    metric = METRICS[name]
    source = training_metrics_object(model)
    evaluations = evaluations_by_checkpoint(model.read(source), source.location.url)
    complete = model.complete_checkpoints
    candidates = [evaluations[c.number] for c in complete if c.number in evaluations]
    if not candidates:
        evaluated = _ranges(sorted(evaluations)) or "none"
        have = ", ".join(str(c.number) for c in complete) or "none"
        raise ModelError(
            f"No complete checkpoint in {model.url('model/')} was evaluated in {source.location.url} "
            f"(evaluated: {evaluated}; complete: {have}); choose best, last or step:N instead."
        )
    chosen = best_evaluation(candidates, metric)
    ckpt = model.checkpoint(chosen.checkpoint)
    others = f"best of {len(candidates)} evaluated complete checkpoint(s)"
    explanation = f"{expression}: {ckpt.name} ({metric.describe(chosen)}; {others})"
    return model.selection_of(ckpt, explanation, metric.value(chosen))


def _ranges(numbers: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``: short lists of checkpoint numbers in messages."""
    parts: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(parts)
