"""Per-checkpoint evaluation scores from ``metrics/TrainingMetrics.json``, read with deepracer-utils.

How an evaluation maps to a checkpoint number (deepracer-simapp ``rollout_worker.py`` and
``metrics/s3_metrics.py``):

- checkpoint 0 is saved before any training; the rollout worker then loops: play one iteration of
  training episodes with the current checkpoint ``k``, evaluate **that same checkpoint** (at least
  ``MIN_EVAL_TRIALS`` episodes, more while it waits) while the trainer builds checkpoint ``k + 1`` from
  those episodes, then load ``k + 1``;
- so the evaluation phase that follows training iteration ``k`` (0-based) scores checkpoint number
  ``k``: the same checkpoint ``deepracer_checkpoints.json`` names with that evaluation's
  ``avg_eval_metric``;
- deepracer-utils numbers iterations ``floor((episode - 1) / episodes_per_iteration)``, where
  evaluation rows carry the episode number of the training episode before them, so its ``iteration``
  column of an evaluation row *is* the checkpoint number (one training session per model prefix, as
  DRfC writes it).

Scores per checkpoint, over its evaluation episodes (ties go to the later checkpoint, as simapp's own
best-model picker does with ``>=``):

- ``progress``: mean completion percentage, higher is better;
- ``reward``: mean episode reward, higher is better;
- ``complete-laps``: number of evaluation laps at 100 %, higher is better;
- ``laptime``: mean lap time in seconds where a lap that is not complete counts as 999.999 s (simapp's
  ``laptime`` best-model metric), lower is better.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drtransfer.errors import ModelError

INCOMPLETE_LAP_SECONDS = 999.999  # simapp counts a lap that is not complete as 999999 ms


@dataclass(frozen=True)
class Evaluation:
    """The evaluation episodes that scored one checkpoint."""

    checkpoint: int
    episodes: int
    progress: float
    reward: float
    complete_laps: int
    laptime: float


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    value: Callable[[Evaluation], float]
    describe: Callable[[Evaluation], str]


def _laptime_text(e: Evaluation) -> str:
    incomplete = e.episodes - e.complete_laps
    tail = f", {incomplete} incomplete counted as {INCOMPLETE_LAP_SECONDS} s" if incomplete else ""
    return f"mean evaluation lap time {e.laptime:.3f} s over {e.episodes} episode(s){tail}"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "progress",
            True,
            lambda e: e.progress,
            lambda e: f"mean evaluation progress {e.progress:.1f} % over {e.episodes} episode(s)",
        ),
        Metric(
            "reward",
            True,
            lambda e: e.reward,
            lambda e: f"mean evaluation reward {e.reward:.1f} over {e.episodes} episode(s)",
        ),
        Metric(
            "complete-laps",
            True,
            lambda e: float(e.complete_laps),
            lambda e: f"{e.complete_laps} of {e.episodes} evaluation lap(s) complete",
        ),
        Metric("laptime", False, lambda e: e.laptime, _laptime_text),
    )
}


def best_evaluation(evaluations: list[Evaluation], metric: Metric) -> Evaluation:
    """The best of ``evaluations`` by ``metric``; on a tie the later checkpoint wins."""
    sign = 1.0 if metric.higher_is_better else -1.0
    return max(evaluations, key=lambda e: (sign * metric.value(e), e.checkpoint))


def _load_frame(raw: bytes) -> Any:
    """deepracer-utils' TrainingMetrics over ``raw`` (it reads files, so the bytes go to a temp file)."""
    from deepracer.logs import TrainingMetrics  # pandas + matplotlib: import only when needed

    fd, path = tempfile.mkstemp(prefix="drtransfer-", suffix="-TrainingMetrics.json")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        # TrainingMetrics prints a summary line to stdout, which would corrupt --json output.
        with contextlib.redirect_stdout(io.StringIO()):
            metrics = TrainingMetrics("", fname=path)
        return metrics.getEvaluation()
    finally:
        os.unlink(path)


def evaluations_by_checkpoint(raw: bytes, url: str) -> dict[int, Evaluation]:
    """Every evaluated checkpoint number -> its :class:`Evaluation`; ModelError if ``raw`` is unusable."""
    try:
        frame = _load_frame(raw)
        rows: list[dict[str, Any]] = frame[["iteration", "completion", "reward", "time"]].to_dict("records")
    except Exception as error:  # JSON, schema or pandas errors all mean the same to a user
        raise ModelError(
            f"{url} cannot be read as DeepRacer training metrics ({type(error).__name__}: {error}); "
            f"choose the checkpoint with best, last or step:N instead."
        ) from None
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(int(row["iteration"]), []).append(row)
    out: dict[int, Evaluation] = {}
    for number, episodes in grouped.items():
        progress = [float(r["completion"]) for r in episodes]
        laps = [
            float(r["time"]) if p >= 100 else INCOMPLETE_LAP_SECONDS for r, p in zip(episodes, progress, strict=True)
        ]
        reward = [float(r["reward"]) for r in episodes]
        if not all(math.isfinite(v) for v in (*progress, *reward, *laps)):
            continue  # an evaluation row without numbers scores nothing
        out[number] = Evaluation(
            checkpoint=number,
            episodes=len(episodes),
            progress=sum(progress) / len(progress),
            reward=sum(reward) / len(reward),
            complete_laps=sum(1 for p in progress if p >= 100),
            laptime=sum(laps) / len(laps),
        )
    return out
