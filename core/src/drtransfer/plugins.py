"""The plugin host: a factory for the plugin manager and a typed facade over its hooks.

Built-in plugins live in the ``plugins/`` distribution and, like third-party ones, are found through
the ``drtransfer`` entry-point group. Core registers only its own fallback (``last`` checkpoint
selection), so the tool still uploads with every plugin disabled. ``pm.hook`` is called only here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from drtransfer import PROJECT_NAME, hookspecs
from drtransfer.errors import ConfigError, PluginError
from drtransfer.registry import Registry

if TYPE_CHECKING:
    from drtransfer.checkpoints import Selection
    from drtransfer.events import Event
    from drtransfer.inventory import ModelInventory
    from drtransfer.operations import ModelPlan
    from drtransfer.runconfig import RunConfig

DISABLE_ENV = "DRTRANSFER_DISABLE_PLUGINS"
CORE_PLUGINS = ("drtransfer.default_selection",)


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    distribution: str
    hooks: list[str]
    builtin: bool


def disabled_from_env(environ: Mapping[str, str]) -> list[str]:
    return [name.strip() for name in environ.get(DISABLE_ENV, "").split(",") if name.strip()]


class PluginHost:
    """Typed access to the hooks; build it with :func:`get_plugin_manager`."""

    def __init__(self, pm: pluggy.PluginManager, distributions: dict[str, tuple[str, str]]) -> None:
        self.pm = pm
        self._distributions = distributions  # plugin name -> (distribution, version)
        self._registries: dict[str, Registry[Any]] = {}

    # ---- checkpoint selection ----
    def select_checkpoint(self, expression: str, model: ModelInventory, run: RunConfig) -> Selection:
        selection: Selection | None = self.pm.hook.drtransfer_select_checkpoint(
            expression=expression, model=model, run=run
        )
        if selection is None:
            raise ConfigError(self.unknown_expression_message(expression))
        return selection

    def checkpoint_expressions(self) -> list[str]:
        results: list[list[str]] = self.pm.hook.drtransfer_checkpoint_expressions()
        return [form for forms in reversed(results) for form in forms]

    def unknown_expression_message(self, expression: str) -> str:
        known = "; ".join(self.checkpoint_expressions())
        return f"Unknown checkpoint expression {expression!r}; known expressions: {known}."

    # ---- planning ----
    def extend_plan(self, plan: ModelPlan, model: ModelInventory, run: RunConfig) -> None:
        self.pm.hook.drtransfer_extend_plan(plan=plan, model=model, run=run)

    # ---- registries ----
    def _registry(self, kind: str, hook_name: str) -> Registry[Any]:
        if kind not in self._registries:
            registry: Registry[Any] = Registry(kind)
            hook = getattr(self.pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                registry.current_plugin = impl.plugin_name
                impl.function(register=registry)
            self._registries[kind] = registry
        return self._registries[kind]

    def importers(self) -> Registry[Any]:
        return self._registry("import target", "drtransfer_register_importers")

    def packagers(self) -> Registry[Any]:
        return self._registry("package format", "drtransfer_register_packagers")

    def notifier_kinds(self) -> Registry[Any]:
        return self._registry("notifier", "drtransfer_register_notifiers")

    # ---- notification ----
    def notify_implementations(self) -> list[tuple[str, Callable[[Event], None]]]:
        """Each ``drtransfer_notify`` implementation on its own, so a caller can isolate failures
        (pluggy stops a broadcast at the first exception)."""
        out: list[tuple[str, Callable[[Event], None]]] = []
        for impl in reversed(self.pm.hook.drtransfer_notify.get_hookimpls()):
            function = impl.function
            out.append((impl.plugin_name, lambda event, f=function: f(event=event)))
        return out

    # ---- introspection ----
    def describe(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
            dist, version = self._distributions.get(name, (PROJECT_NAME, _version(PROJECT_NAME)))
            infos.append(PluginInfo(name, version, dist, hooks, builtin=dist in BUILTIN_DISTRIBUTIONS))
        return sorted(infos, key=lambda info: info.name)


BUILTIN_DISTRIBUTIONS = frozenset({PROJECT_NAME, "drtransfer-plugins"})


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    disabled: Iterable[str] = (),
    extra_plugins: Iterable[tuple[str, object]] = (),
    environ: Mapping[str, str] | None = None,
) -> PluginHost:
    """Build a fresh plugin host (never a global).

    Order: hookspecs; blocked names (``DRTRANSFER_DISABLE_PLUGINS`` and ``disabled``); entry points of
    the ``drtransfer`` group; ``extra_plugins`` (tests); core's fallback; ``check_pending()``.
    """
    environ = os.environ if environ is None else environ
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = {*disabled_from_env(environ), *disabled}
    distributions: dict[str, tuple[str, str]] = {}
    available: set[str] = set()
    if load_entrypoints:
        for ep in importlib.metadata.entry_points(group=PROJECT_NAME):
            available.add(ep.name)
            if ep.name in blocked or pm.get_plugin(ep.name) is not None:
                continue
            dist = ep.dist.name if ep.dist else "unknown"
            try:
                plugin = ep.load()
            except Exception as error:  # noqa: BLE001 - any import failure is reported the same way
                raise PluginError(
                    f"The plugin {ep.name!r} (distribution {dist}) failed to load: {error}; "
                    f"fix its installation or disable it with --disable-plugin {ep.name}."
                ) from error
            pm.register(plugin, name=ep.name)
            distributions[ep.name] = (dist, ep.dist.version if ep.dist else "unknown")
    for name, plugin in extra_plugins:
        if name not in blocked:
            pm.register(plugin, name=name)
            distributions[name] = ("(registered in-process)", "-")
    for module_name in CORE_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    unknown = blocked - available - {name for name, _ in extra_plugins}
    if load_entrypoints and unknown:
        raise ConfigError(
            f"Cannot disable unknown plugin(s) {', '.join(sorted(unknown))}; "
            f"installed plugins: {', '.join(sorted(available)) or 'none'}."
        )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(f"A plugin implements a hook that does not exist: {error}.") from error
    return PluginHost(pm, distributions)
