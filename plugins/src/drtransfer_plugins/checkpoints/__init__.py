"""Built-in checkpoint selectors (entry point ``checkpoints``): ``best``, ``step:N``, ``metric:NAME``.

``metric:NAME`` reads the model's ``metrics/TrainingMetrics.json`` with deepracer-utils and picks, among
the checkpoints whose files are all present, the one whose evaluation scored best by NAME
(``progress``, ``reward``, ``complete-laps``, ``laptime``). The evaluation after training iteration
``k`` scores checkpoint number ``k``; see :mod:`drtransfer_plugins.checkpoints.metrics` and
``docs/plugins.md`` for why, and for how ties are broken.
"""

from __future__ import annotations

from drtransfer_plugins.checkpoints.selectors import drtransfer_checkpoint_expressions, drtransfer_select_checkpoint

__all__ = ["drtransfer_checkpoint_expressions", "drtransfer_select_checkpoint"]
