"""The plugin host: a factory for the plugin manager and a typed facade over its hooks.

Built-in plugins live in the ``plugins/`` distribution and, like third-party ones, are found through
the ``drtransfer`` entry-point group. Core registers only its own fallback (``last`` checkpoint
selection), so the tool still uploads with every plugin disabled. ``pm.hook`` is called only here.

A plugin that raises something other than a :class:`~drtransfer.errors.DrTransferError` inside a hook
is named in a :class:`~drtransfer.errors.PluginError` (found by matching the traceback against the
hook implementations), so a user knows which plugin to disable.
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
from drtransfer.errors import ConfigError, DrTransferError, PluginError
from drtransfer.registry import Registry

if TYPE_CHECKING:
    from drtransfer.checkpoints import Selection
    from drtransfer.engine.executor import ExecutorFactory
    from drtransfer.events import Event
    from drtransfer.importing import Importer
    from drtransfer.inventory import ModelInventory
    from drtransfer.notifying import NotifierFactory
    from drtransfer.operations import ModelPlan
    from drtransfer.packaging import Packager
    from drtransfer.runconfig import RunConfig

DISABLE_ENV = "DRTRANSFER_DISABLE_PLUGINS"
CORE_PLUGINS = ("drtransfer.default_selection", "drtransfer.engine.builtin")
"""Core's own plugins, registered by module name after every entry point; they cannot be disabled."""

BUILTIN_DISTRIBUTIONS = frozenset({PROJECT_NAME, "drtransfer-plugins"})

ISOLATED_HOOKS = (
    "drtransfer_checkpoint_expressions",
    "drtransfer_notify",
    "drtransfer_register_importers",
    "drtransfer_register_packagers",
    "drtransfer_register_notifiers",
    "drtransfer_register_executors",
)
"""Hooks whose implementations the host calls one by one (isolation, attribution): no wrappers."""

IN_PROCESS = "(registered in-process)"


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as ``drtransfer plugins`` shows it."""

    name: str
    version: str
    distribution: str
    hooks: list[str]
    builtin: bool
    enabled: bool = True


def disabled_from_env(environ: Mapping[str, str]) -> list[str]:
    """The plugin names listed (comma separated) in ``DRTRANSFER_DISABLE_PLUGINS``."""
    return [name.strip() for name in environ.get(DISABLE_ENV, "").split(",") if name.strip()]


def _describe(error: BaseException) -> str:
    """``"KeyError: 'oops'"`` on one line (pluggy's and import errors span several)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _call(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one implementation with the subset of arguments it declares (pluggy's own rule)."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


class PluginHost:
    """Typed access to the hooks; build it with :func:`get_plugin_manager`."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        distributions: dict[str, tuple[str, str]],
        disabled: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.pm = pm
        self._distributions = distributions  # plugin name -> (distribution, version)
        self._disabled = dict(disabled or {})  # blocked entry-point name -> (distribution, version)
        self._registries: dict[str, Registry[Any]] = {}

    # ---- checkpoint selection ----
    def select_checkpoint(self, expression: str, model: ModelInventory, run: RunConfig) -> Selection:
        """The selection ``expression`` asks for; ConfigError listing the known forms if nobody answers."""
        expression = expression.strip()
        hook = self.pm.hook.drtransfer_select_checkpoint
        try:
            selection: Selection | None = hook(expression=expression, model=model, run=run)
        except DrTransferError:
            raise
        except Exception as error:
            raise self._failure(error, hook, f"choosing the checkpoint {expression!r} of {run.label}") from error
        if selection is None:
            raise ConfigError(self.unknown_expression_message(expression))
        return selection

    def checkpoint_expressions(self) -> list[str]:
        """Every ``"form: meaning"`` line the plugins answer: core's fallback first, then the plugins in
        registration order."""
        return [form for forms in self.checkpoint_expressions_by_plugin().values() for form in forms]

    def checkpoint_expressions_by_plugin(self) -> dict[str, list[str]]:
        """Plugin name -> the checkpoint expressions it answers (for ``drtransfer plugins``)."""
        out: dict[str, list[str]] = {}
        for impl in self.pm.hook.drtransfer_checkpoint_expressions.get_hookimpls():  # trylast first
            try:
                forms = _call(impl)
            except DrTransferError:
                raise
            except Exception as error:
                raise self._failure(
                    error, self.pm.hook.drtransfer_checkpoint_expressions, "listing its checkpoint expressions"
                ) from error
            if forms:
                out.setdefault(impl.plugin_name, []).extend(str(form) for form in forms)
        return out

    def unknown_expression_message(self, expression: str) -> str:
        known = "; ".join(self.checkpoint_expressions())
        return f"Unknown checkpoint expression {expression!r}; known expressions: {known}."

    # ---- planning ----
    def extend_plan(self, plan: ModelPlan, model: ModelInventory, run: RunConfig) -> None:
        hook = self.pm.hook.drtransfer_extend_plan
        try:
            hook(plan=plan, model=model, run=run)
        except DrTransferError:
            raise
        except Exception as error:
            raise self._failure(error, hook, f"extending the plan of {run.label}") from error

    # ---- registries ----
    def _registry(self, kind: str, hook_name: str) -> Registry[Any]:
        if kind not in self._registries:
            registry: Registry[Any] = Registry(kind)
            for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):  # call order
                registry.current_plugin = impl.plugin_name
                try:
                    _call(impl, register=registry)
                except DrTransferError:
                    raise
                except Exception as error:
                    raise PluginError(
                        f"The plugin {impl.plugin_name!r} failed while registering its {kind}s "
                        f"({_describe(error)}); disable it with --disable-plugin {impl.plugin_name}."
                    ) from error
            self._registries[kind] = registry
        return self._registries[kind]

    def importers(self) -> Registry[Importer]:
        return self._registry("import target", "drtransfer_register_importers")

    def packagers(self) -> Registry[Packager]:
        return self._registry("package format", "drtransfer_register_packagers")

    def notifier_kinds(self) -> Registry[NotifierFactory]:
        return self._registry("notifier", "drtransfer_register_notifiers")

    def executors(self) -> Registry[ExecutorFactory]:
        return self._registry("executor", "drtransfer_register_executors")

    # ---- notification ----
    def notify_implementations(self) -> list[tuple[str, Callable[[Event], None]]]:
        """Each ``drtransfer_notify`` implementation on its own, in call order, so a caller can isolate
        failures (pluggy stops a broadcast at the first exception)."""
        out: list[tuple[str, Callable[[Event], None]]] = []
        for impl in reversed(self.pm.hook.drtransfer_notify.get_hookimpls()):

            def send(event: Event, impl: pluggy.HookImpl = impl) -> None:
                _call(impl, event=event)

            out.append((impl.plugin_name, send))
        return out

    # ---- introspection ----
    def plugin_names(self) -> list[str]:
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    @property
    def disabled(self) -> list[str]:
        return sorted(self._disabled)

    def describe(self) -> list[PluginInfo]:
        """Every plugin, enabled or disabled, with its distribution, version and implemented hooks."""
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
            dist, version = self._distributions.get(name, (PROJECT_NAME, _version(PROJECT_NAME)))
            infos.append(PluginInfo(name, version, dist, hooks, builtin=dist in BUILTIN_DISTRIBUTIONS))
        for name, (dist, version) in self._disabled.items():
            infos.append(PluginInfo(name, version, dist, [], builtin=dist in BUILTIN_DISTRIBUTIONS, enabled=False))
        return sorted(infos, key=lambda info: info.name)

    # ---- failures ----
    def _failure(self, error: Exception, hook: pluggy.HookCaller, doing: str) -> PluginError:
        name = _blame(error, hook)
        who = f"The plugin {name!r}" if name else "A plugin"
        fix = f"disable it with --disable-plugin {name}" if name else "disable the plugin with --disable-plugin"
        return PluginError(f"{who} failed while {doing} ({_describe(error)}); {fix}.")


def _blame(error: BaseException, hook: pluggy.HookCaller) -> str | None:
    """The plugin whose implementation of ``hook`` raised ``error``: the innermost frame that is one."""
    codes = {}
    for impl in hook.get_hookimpls():
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    name = None
    tb = error.__traceback__
    while tb is not None:
        name = codes.get(tb.tb_frame.f_code, name)
        tb = tb.tb_next
    return name


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _ordered(eps: Iterable[importlib.metadata.EntryPoint]) -> list[importlib.metadata.EntryPoint]:
    """Built-in distributions first, then the others, each by name: later registrations are called
    first (pluggy is LIFO), so a third-party plugin can answer before a built-in one."""

    def key(ep: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
        dist = ep.dist.name if ep.dist else ""
        return (dist not in BUILTIN_DISTRIBUTIONS, dist, ep.name)

    return sorted(eps, key=key)


def _register(pm: pluggy.PluginManager, plugin: object, name: str, dist: str) -> None:
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as error:
        raise PluginError(
            f"The plugin {name!r} (distribution {dist}) cannot be registered ({_describe(error)}); "
            f"fix its installation or disable it with --disable-plugin {name}."
        ) from error
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.name in ISOLATED_HOOKS and any(
            impl.plugin is plugin and (impl.wrapper or impl.hookwrapper) for impl in caller.get_hookimpls()
        ):
            pm.unregister(plugin)
            raise PluginError(
                f"The plugin {name!r} (distribution {dist}) implements {caller.name} as a wrapper, which "
                f"this hook does not support; fix the plugin or disable it with --disable-plugin {name}."
            )


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    disabled: Iterable[str] = (),
    extra_plugins: Iterable[tuple[str, object]] = (),
    environ: Mapping[str, str] | None = None,
) -> PluginHost:
    """Build a fresh plugin host (never a global).

    Order: hookspecs; blocked names (``DRTRANSFER_DISABLE_PLUGINS`` and ``disabled``, e.g. from
    ``--disable-plugin``); entry points of the ``drtransfer`` group; ``extra_plugins`` (tests);
    core's fallback; ``check_pending()``. A plugin that fails to import or register is named in one
    :class:`PluginError`; disabling a plugin that is not installed is a :class:`ConfigError`.
    """
    environ = os.environ if environ is None else environ
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = {*disabled_from_env(environ), *disabled}
    core = blocked & set(CORE_PLUGINS)
    if core:
        raise ConfigError(
            f"The core plugin {', '.join(sorted(core))} cannot be disabled; disable the plugins that "
            f"answer first instead (see drtransfer plugins)."
        )
    for name in blocked:
        pm.set_blocked(name)
    distributions: dict[str, tuple[str, str]] = {}
    skipped: dict[str, tuple[str, str]] = {}
    available: set[str] = set()
    extras = list(extra_plugins)
    if load_entrypoints:
        for ep in _ordered(importlib.metadata.entry_points(group=PROJECT_NAME)):
            available.add(ep.name)
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "unknown"
            if ep.name in blocked:
                skipped[ep.name] = (dist, version)
                continue
            if ep.name in distributions:  # the same name from a second distribution: first one wins
                continue
            try:
                plugin = ep.load()
            except Exception as error:  # any import failure is reported the same way
                raise PluginError(
                    f"The plugin {ep.name!r} (distribution {dist}) failed to load "
                    f"({_describe(error)}); fix its installation or disable it with "
                    f"--disable-plugin {ep.name}."
                ) from error
            _register(pm, plugin, ep.name, dist)
            distributions[ep.name] = (dist, version)
    for name, plugin in extras:
        if name in blocked:
            skipped[name] = (IN_PROCESS, "-")
            continue
        _register(pm, plugin, name, IN_PROCESS)
        distributions[name] = (IN_PROCESS, "-")
    for module_name in CORE_PLUGINS:
        _register(pm, importlib.import_module(module_name), module_name, PROJECT_NAME)
    unknown = blocked - available - {name for name, _ in extras}
    if load_entrypoints and unknown:
        raise ConfigError(
            f"Cannot disable unknown plugin(s) {', '.join(sorted(unknown))}; "
            f"installed plugins: {', '.join(sorted(available)) or 'none'}."
        )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        name = pm.get_name(error.plugin) or "?"
        raise PluginError(
            f"The plugin {name!r} implements a hook that does not exist ({_describe(error)}); "
            f"update it or disable it with --disable-plugin {name}."
        ) from error
    return PluginHost(pm, distributions, skipped)
