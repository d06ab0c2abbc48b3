"""The hooks of deepracer-transfer. Every hook is ``drtransfer_``-prefixed and called with keywords.

Hooks run in the parent process. Whatever a hook hands on to the transfer engine must be plain,
picklable data (operations, endpoints) or importable classes: worker processes never see a plugin
manager. Implementations must not give their parameters defaults (pluggy would not pass them), and may
accept any subset of the arguments. ``docs/plugins.md`` documents each hook with an example; a test
checks that every hook here has a documentation entry and a test.

Call semantics, per group:

- checkpoint selection: ``drtransfer_select_checkpoint`` is *firstresult* (the first non-``None``
  answer wins; core's ``last`` fallback is registered ``trylast``); ``drtransfer_checkpoint_expressions``
  is called implementation by implementation, so each form is attributed to its plugin (no wrappers);
- planning: ``drtransfer_extend_plan`` is a broadcast that mutates the plan it is given;
- registration: ``drtransfer_register_*`` (importers, packagers, notifiers, executors) are broadcasts, each
  implementation is called on its own so that a duplicate or a failure names the plugin (wrapper
  implementations are refused);
- notification: ``drtransfer_notify`` is a broadcast whose implementations are called one by one,
  isolated from each other and from the transfer (wrapper implementations are refused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from drtransfer import PROJECT_NAME

if TYPE_CHECKING:
    from drtransfer.checkpoints import Selection
    from drtransfer.engine.executor import ExecutorFactory
    from drtransfer.events import Event
    from drtransfer.importing import Importer
    from drtransfer.inventory import ModelInventory
    from drtransfer.notifying import NotifierFactory
    from drtransfer.operations import ModelPlan
    from drtransfer.packaging import Packager
    from drtransfer.registry import Registry
    from drtransfer.runconfig import RunConfig

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# ---- checkpoint selection -------------------------------------------------------------------------


@hookspec(firstresult=True)
def drtransfer_select_checkpoint(expression: str, model: ModelInventory, run: RunConfig) -> Selection | None:
    """Choose the checkpoint of ``model`` that ``expression`` asks for.

    Return ``None`` when ``expression`` is not yours; the first non-``None`` answer wins (firstresult).
    Core's fallback (``last``) runs last. Raise :class:`drtransfer.errors.ConfigError` when the
    expression is yours but malformed (``step:x``), naming the valid forms; raise
    :class:`drtransfer.errors.ModelError` when it is well formed but cannot be satisfied for this
    model (``step:12`` and checkpoint 12 is gone). Pick only complete checkpoints
    (``model.complete_checkpoints``, ``model.checkpoint(n)``).

    :param expression: what the user asked for (``--checkpoint``), stripped of surrounding blanks,
        e.g. ``best``, ``step:12``, ``metric:progress``.
    :param model: the model's inventory: objects, complete checkpoints, the parsed index, a reader.
    :param run: the run's configuration (``run.values`` holds every DRfC variable).
    :returns: a :class:`drtransfer.checkpoints.Selection` whose ``explanation`` is one line starting
        with the expression, e.g. ``best: 64_Step-170203.ckpt (avg_eval_metric 58.9)``; or ``None``.
    """


@hookspec
def drtransfer_checkpoint_expressions() -> list[str]:
    """Describe the checkpoint expressions you answer, one ``"form: meaning"`` string each.

    Core lists them all when a user gives an expression nobody answers, and ``drtransfer plugins``
    shows them.

    :returns: a list such as ``["step:N: checkpoint number N"]``.
    """
    return []  # a spec's body never runs; this only satisfies the type checker


# ---- planning -------------------------------------------------------------------------------------


@hookspec
def drtransfer_extend_plan(plan: ModelPlan, model: ModelInventory, run: RunConfig) -> None:
    """Add or drop operations of one model's plan before it runs (or is shown by a dry run).

    Use ``plan.add(CopyObject(...))`` or ``plan.drop(target_key)``; build target locations under
    ``plan.target_root``. Mark nothing ``commit``: the index files that make a model importable are
    core's and always go last. Do no I/O but ``model.read(...)``: the plan is data, the engine runs it.

    :param plan: the mutable plan of one model.
    :param model: the model's inventory (every source object is in ``model.objects``).
    :param run: the run's configuration.
    """


# ---- registration of import targets, archive formats and notifiers -------------------------------


@hookspec
def drtransfer_register_importers(register: Registry[Importer]) -> None:
    """Register import targets: call ``register(name, importer, description)`` for each.

    ``importer`` implements :class:`drtransfer.importing.Importer`; ``name`` is what ``--to`` takes.
    A name registered twice is refused, naming both plugins.

    :param register: the registry of import targets; call it, do not keep it.
    """


@hookspec
def drtransfer_register_packagers(register: Registry[Packager]) -> None:
    """Register archive formats: call ``register(name, packager, description)`` for each.

    ``packager`` implements :class:`drtransfer.packaging.Packager`; ``name`` is what ``--format`` takes.

    :param register: the registry of archive formats; call it, do not keep it.
    """


@hookspec
def drtransfer_register_notifiers(register: Registry[NotifierFactory]) -> None:
    """Register notifier kinds: call ``register(name, factory, description)`` for each.

    ``factory`` implements :class:`drtransfer.notifying.NotifierFactory`: it says which ``--notify``
    URLs it takes and builds a notifier for one.

    :param register: the registry of notifier kinds; call it, do not keep it.
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


# ---- executors -------------------------------------------------------------------------------------


@hookspec
def drtransfer_register_executors(register: Registry[ExecutorFactory]) -> None:
    """Register executors, where the engine's worker tasks run: call ``register(name, factory, description)``.

    ``factory`` implements :class:`drtransfer.engine.executor.ExecutorFactory`; ``name`` is what
    ``--executor`` (or ``DRTRANSFER_EXECUTOR``) takes. Core registers ``local`` (processes on this
    machine). The factory runs in the parent; the executor it builds runs
    :func:`drtransfer.engine.worker.run_task` wherever it likes and reports back (see
    :mod:`drtransfer.engine.executor`).

    :param register: the registry of executors; call it, do not keep it.
    """
