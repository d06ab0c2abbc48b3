"""The hooks of deepracer-transfer. Every hook is ``drtransfer_``-prefixed and called with keywords.

Hooks run in the parent process. Whatever a hook hands on to the transfer engine must be plain,
picklable data (operations, endpoints) or importable classes: worker processes never see a plugin
manager. Implementations must not give their parameters defaults (pluggy would not pass them), and may
accept any subset of the arguments. ``docs/plugins.md`` documents each hook with an example; a test
checks that every hook here has a documentation entry and a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from drtransfer import PROJECT_NAME

if TYPE_CHECKING:
    from drtransfer.checkpoints import Selection
    from drtransfer.events import Event
    from drtransfer.inventory import ModelInventory
    from drtransfer.operations import ModelPlan
    from drtransfer.registry import Registry
    from drtransfer.runconfig import RunConfig

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# ---- checkpoint selection -------------------------------------------------------------------------


@hookspec(firstresult=True)
def drtransfer_select_checkpoint(expression: str, model: ModelInventory, run: RunConfig) -> Selection | None:
    """Choose the checkpoint of ``model`` that ``expression`` asks for.

    Return ``None`` when ``expression`` is not yours; the first non-``None`` answer wins. Core's
    fallback (``last``) runs last. Raise :class:`drtransfer.errors.ModelError` when the expression is
    yours but cannot be satisfied for this model (for example ``step:12`` and checkpoint 12 is gone).

    :param expression: what the user asked for, e.g. ``best``, ``step:12``, ``metric:progress``.
    :param model: the model's inventory: objects, complete checkpoints, the parsed index.
    :param run: the run's configuration.
    :returns: a :class:`drtransfer.checkpoints.Selection` with a one-line explanation, or ``None``.
    """


@hookspec
def drtransfer_checkpoint_expressions() -> list[str]:
    """Describe the checkpoint expressions you answer, one ``"form: meaning"`` string each.

    Core lists them when a user gives an expression nobody answers.
    """
    return []


# ---- planning -------------------------------------------------------------------------------------


@hookspec
def drtransfer_extend_plan(plan: ModelPlan, model: ModelInventory, run: RunConfig) -> None:
    """Add or drop operations of one model's plan before it runs (or is shown by a dry run).

    Use ``plan.add(CopyObject(...))`` or ``plan.drop(target_key)``. Mark nothing ``commit``: the
    index files that make a model importable are core's and always go last.

    :param plan: the mutable plan of one model.
    :param model: the model's inventory (every source object is in ``model.objects``).
    :param run: the run's configuration.
    """


# ---- registration of import targets, archive formats and notifiers -------------------------------


@hookspec
def drtransfer_register_importers(register: Registry[Any]) -> None:
    """Register import targets: ``register(name, importer, description)``.

    ``importer`` implements :class:`drtransfer.importing.Importer`; ``name`` is what ``--to`` takes.
    """


@hookspec
def drtransfer_register_packagers(register: Registry[Any]) -> None:
    """Register archive formats: ``register(name, packager, description)``.

    ``packager`` implements :class:`drtransfer.packaging.Packager`.
    """


@hookspec
def drtransfer_register_notifiers(register: Registry[Any]) -> None:
    """Register notifier kinds: ``register(name, factory, description)``.

    ``factory`` implements :class:`drtransfer.notifying.NotifierFactory`: it says which ``--notify``
    URLs it takes and builds a notifier for one.
    """


# ---- notification ---------------------------------------------------------------------------------


@hookspec
def drtransfer_notify(event: Event) -> None:
    """Receive every notification event (see :mod:`drtransfer.events`).

    Called off the transfer's path, from a background thread of the parent process; each
    implementation is isolated: one that raises or is slow never fails or slows a transfer, and its
    failure is reported once at the end of the command.

    :param event: a typed event; ``event.name`` and ``event.properties()`` describe it.
    """
