"""An example deepracer-transfer plugin: a checkpoint selector, a notifier and a plan extension.

It is a whole distribution (``docs/example-plugin/pyproject.toml``) whose only link to deepracer-transfer
is one entry point in the ``drtransfer`` group::

    [project.entry-points.drtransfer]
    example = "drtransfer_example"

Install it (``pip install -e docs/example-plugin``) and ``drtransfer plugins`` lists it; disable it with
``--disable-plugin example`` or ``DRTRANSFER_DISABLE_PLUGINS=example``. What it adds:

- ``--checkpoint oldest``: the lowest-numbered checkpoint whose files are all present;
- a notifier: every event as one JSON line appended to the file named by ``DRTRANSFER_EXAMPLE_LOG``
  (nothing when it is unset);
- a plan extension: with ``DRTRANSFER_EXAMPLE_COPY_SIMTRACE=1`` (process environment or run file), the
  run's ``training-simtrace/`` objects (``<worker>/training-simtrace/`` with several workers) are uploaded too.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from drtransfer import hookimpl
from drtransfer.errors import ModelError
from drtransfer.operations import CopyObject, ObjectLocation

if TYPE_CHECKING:  # only for annotations: a plugin needs nothing from core at import time but hookimpl
    from drtransfer.checkpoints import Selection
    from drtransfer.events import Event
    from drtransfer.inventory import ModelInventory
    from drtransfer.operations import ModelPlan
    from drtransfer.runconfig import RunConfig

__version__ = "0.1.0"

LOG_ENV = "DRTRANSFER_EXAMPLE_LOG"
SIMTRACE_ENV = "DRTRANSFER_EXAMPLE_COPY_SIMTRACE"


# ---- a checkpoint selector ------------------------------------------------------------------------


@hookimpl
def drtransfer_checkpoint_expressions() -> list[str]:
    return ["oldest: the lowest-numbered complete checkpoint (example plugin)"]


@hookimpl
def drtransfer_select_checkpoint(expression: str, model: ModelInventory) -> Selection | None:
    if expression != "oldest":
        return None  # not ours: the next plugin (or core's `last`) answers
    complete = model.complete_checkpoints
    if not complete:
        raise ModelError(f"{model.url('model/')} holds no complete checkpoint; nothing can be uploaded.")
    oldest = complete[0]
    return model.selection_of(oldest, f"oldest: {oldest.name} (lowest of {len(complete)} complete checkpoint(s))")


# ---- a notifier -----------------------------------------------------------------------------------


@hookimpl
def drtransfer_notify(event: Event) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = json.dumps({"event": event.name, "created": event.created, "properties": event.properties()})
    with open(path, "a", encoding="utf-8") as log:
        log.write(line + "\n")


# ---- a plan extension -----------------------------------------------------------------------------


def _enabled(run: RunConfig) -> bool:
    value = run.values.get(SIMTRACE_ENV, os.environ.get(SIMTRACE_ENV, ""))
    return value.strip().lower() in ("1", "true", "yes")


@hookimpl
def drtransfer_extend_plan(plan: ModelPlan, model: ModelInventory, run: RunConfig) -> None:
    if not _enabled(run):
        return
    prefix = run.model_prefix.strip("/") + "/"
    root = plan.target_root  # target bucket and prefix, with a trailing slash
    for key, source in sorted(model.objects.items()):
        relative = key[len(prefix) :]
        if "training-simtrace" in relative.split("/")[:2]:  # training-simtrace/ or <worker>/training-simtrace/
            plan.add(CopyObject(source, ObjectLocation(root.endpoint, root.bucket, root.key + relative)))
