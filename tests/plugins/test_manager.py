"""The plugin manager factory and the PluginHost facade: discovery, disabling, load failures,
validation, registries, isolation of notifications, plan extension."""

from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import drtransfer_plugins.checkpoints as checkpoints_plugin
from drtransfer import hookimpl
from drtransfer.checkpoints import Selection
from drtransfer.errors import ConfigError, ModelError, PluginError
from drtransfer.events import BatchFinished, BatchStarted, Event
from drtransfer.inventory import ModelInventory
from drtransfer.notifying import open_notifications
from drtransfer.operations import CopyObject, ModelPlan, ObjectLocation
from drtransfer.plan import plan_model
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.registry import Registry
from tests.plugins.factory import make_inventory

BUILTINS = {"aws-console", "carzip", "checkpoints", "droa", "notify", "ray"}


def host_with(*plugins: tuple[str, object]) -> PluginHost:
    return get_plugin_manager(load_entrypoints=False, extra_plugins=plugins)


# ---- discovery ------------------------------------------------------------------------------------


def test_builtins_and_the_example_are_found_through_entry_points() -> None:
    host = get_plugin_manager(environ={})
    infos = {info.name: info for info in host.describe()}
    assert BUILTINS | {"example", "drtransfer.default_selection"} <= set(infos)
    for name in BUILTINS:
        assert infos[name].distribution == "drtransfer-plugins"
        assert infos[name].builtin and infos[name].enabled
    assert infos["example"].distribution == "drtransfer-example"
    assert infos["example"].version == "0.1.0"
    assert not infos["example"].builtin
    assert infos["checkpoints"].hooks == ["drtransfer_checkpoint_expressions", "drtransfer_select_checkpoint"]
    assert infos["drtransfer.default_selection"].distribution == "drtransfer"


def test_a_factory_not_a_global() -> None:
    first, second = get_plugin_manager(environ={}), get_plugin_manager(environ={})
    assert first.pm is not second.pm
    first.pm.unregister(name="checkpoints")
    assert "checkpoints" in second.plugin_names()


def test_without_entry_points_only_core_answers() -> None:
    host = get_plugin_manager(load_entrypoints=False)
    assert host.plugin_names() == ["drtransfer.default_selection", "drtransfer.engine.builtin"]
    assert host.executors().names() == ["local"]
    model = make_inventory((1, 2))
    assert host.select_checkpoint("last", model, model.run).checkpoint.number == 2
    with pytest.raises(ConfigError, match=r"Unknown checkpoint expression 'best'; known expressions: last: "):
        host.select_checkpoint("best", model, model.run)


def test_third_party_plugins_answer_before_built_ins() -> None:
    order = [
        impl.plugin_name for impl in get_plugin_manager(environ={}).pm.hook.drtransfer_select_checkpoint.get_hookimpls()
    ]
    assert order.index("drtransfer.default_selection") < order.index("checkpoints") < order.index("example")


# ---- disabling ------------------------------------------------------------------------------------


def test_disable_through_the_environment_and_the_option() -> None:
    host = get_plugin_manager(environ={"DRTRANSFER_DISABLE_PLUGINS": "example, droa"}, disabled=["checkpoints"])
    assert not {"example", "droa", "checkpoints"} & set(host.plugin_names())
    assert host.disabled == ["checkpoints", "droa", "example"]
    infos = {info.name: info for info in host.describe()}
    assert not infos["example"].enabled and infos["example"].distribution == "drtransfer-example"
    assert infos["carzip"].enabled
    model = make_inventory((1, 2))
    with pytest.raises(ConfigError, match="Unknown checkpoint expression 'best'"):
        host.select_checkpoint("best", model, model.run)


def test_disabling_an_unknown_plugin_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"Cannot disable unknown plugin\(s\) nope; installed plugins: .*checkpoints"):
        get_plugin_manager(environ={}, disabled=["nope"])


def test_core_cannot_be_disabled() -> None:
    with pytest.raises(ConfigError, match=r"The core plugin drtransfer\.default_selection cannot be disabled"):
        get_plugin_manager(environ={"DRTRANSFER_DISABLE_PLUGINS": "drtransfer.default_selection"})


# ---- plugins that fail to load or do not fit the specs -------------------------------------------


@pytest.fixture
def broken_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution (a dist-info on sys.path) whose entry point raises on import."""
    (tmp_path / "drtransfer_broken.py").write_text("raise ImportError('No module named shiny_dependency')\n")
    info = tmp_path / "drtransfer_broken-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: drtransfer-broken\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[drtransfer]\nbroken = drtransfer_broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("drtransfer_broken", None)


def test_a_plugin_that_fails_to_load_is_named_in_one_error(broken_distribution: Path) -> None:
    with pytest.raises(PluginError) as info:
        get_plugin_manager(environ={})
    assert str(info.value) == (
        "The plugin 'broken' (distribution drtransfer-broken) failed to load "
        "(ImportError: No module named shiny_dependency); fix its installation or disable it with "
        "--disable-plugin broken."
    )
    host = get_plugin_manager(environ={"DRTRANSFER_DISABLE_PLUGINS": "broken"})
    assert "broken" in host.disabled and "checkpoints" in host.plugin_names()


class UnknownHook:
    @hookimpl
    def drtransfer_select_checkpoints(self, expression: str) -> None:  # plural: no such hook
        return None


class ExtraArgument:
    @hookimpl
    def drtransfer_notify(self, event: Event, config: object) -> None:  # `config` is not in the spec
        return None


class NotifyWrapper:
    @hookimpl(wrapper=True)
    def drtransfer_notify(self, event: Event) -> Iterator[None]:
        yield None


def test_an_unknown_hook_is_refused_naming_the_plugin() -> None:
    with pytest.raises(
        PluginError, match=r"^The plugin 'typo' implements a hook that does not exist .*drtransfer_select_checkpoints"
    ):
        host_with(("typo", UnknownHook()))


def test_an_argument_the_spec_lacks_is_refused_naming_the_plugin() -> None:
    with pytest.raises(
        PluginError,
        match=r"^The plugin 'extra' \(distribution .*\) cannot be registered \(PluginValidationError: .*config",
    ):
        host_with(("extra", ExtraArgument()))


def test_a_wrapper_on_an_isolated_hook_is_refused() -> None:
    with pytest.raises(PluginError, match=r"'wrapper' .* implements drtransfer_notify as a wrapper"):
        host_with(("wrapper", NotifyWrapper()))


# ---- checkpoint selection -------------------------------------------------------------------------


class Newest:
    """Answers `newest`; raises a bug for `crash`."""

    @hookimpl
    def drtransfer_select_checkpoint(self, expression: str, model: ModelInventory) -> Selection | None:
        if expression == "crash":
            raise KeyError("oops")
        if expression != "newest":
            return None
        ckpt = model.complete_checkpoints[-1]
        return model.selection_of(ckpt, f"newest: {ckpt.name}")

    @hookimpl
    def drtransfer_checkpoint_expressions(self) -> list[str]:
        return ["newest: the highest complete checkpoint"]


def test_hook_drtransfer_checkpoint_expressions() -> None:
    host = host_with(("checkpoints", checkpoints_plugin), ("newest", Newest()))
    by_plugin = host.checkpoint_expressions_by_plugin()
    assert list(by_plugin) == ["drtransfer.default_selection", "checkpoints", "newest"]
    assert by_plugin["newest"] == ["newest: the highest complete checkpoint"]
    assert [form.split(":")[0] for form in host.checkpoint_expressions()] == [
        "last",
        "best",
        "step",
        "metric",
        "newest",
    ]
    model = make_inventory((1, 2))
    with pytest.raises(ConfigError, match=r"known expressions: last: .*; newest: the highest complete checkpoint"):
        host.select_checkpoint("no-such-selector-7f3a", model, model.run)


def test_the_first_answer_wins_and_a_plugin_bug_names_the_plugin() -> None:
    host = host_with(("newest", Newest()))
    model = make_inventory((1, 5, 9), missing={9: [".meta"]})
    assert host.select_checkpoint("newest", model, model.run).explanation.startswith("newest: 5_Step-")
    with pytest.raises(PluginError) as info:
        host.select_checkpoint("crash", model, model.run)
    assert str(info.value) == (
        "The plugin 'newest' failed while choosing the checkpoint 'crash' of run 0 (rl-deepracer-sagemaker) "
        "(KeyError: 'oops'); disable it with --disable-plugin newest."
    )


def test_model_errors_of_a_selector_pass_through_unchanged() -> None:
    class Refuses:
        @hookimpl
        def drtransfer_select_checkpoint(self, expression: str) -> Selection | None:
            raise ModelError("Checkpoint 3 is gone; choose another checkpoint.")

    model = make_inventory()
    with pytest.raises(ModelError, match=r"^Checkpoint 3 is gone; choose another checkpoint\.$"):
        host_with(("refuses", Refuses())).select_checkpoint("anything", model, model.run)


# ---- plan extension -------------------------------------------------------------------------------


def test_hook_drtransfer_extend_plan() -> None:
    class AddAndDrop:
        @hookimpl
        def drtransfer_extend_plan(self, plan: ModelPlan, model: ModelInventory) -> None:
            plan.drop(plan.target_root.key + "ip/hyperparameters.json")
            source = model.objects[f"{model.run.model_prefix}/metrics/EvaluationMetrics-20220709200242.json"]
            root = plan.target_root
            plan.add(CopyObject(source, ObjectLocation(root.endpoint, root.bucket, root.key + "extra/eval.json")))

    model = make_inventory((1, 2))
    host = host_with(("add-and-drop", AddAndDrop()))
    selection = host.select_checkpoint("last", model, model.run)
    plan = plan_model(model, selection, ObjectLocation("upload", "target", "up"))
    host.extend_plan(plan, model, model.run)
    keys = plan.target_keys()
    assert "up/extra/eval.json" in keys
    assert "up/ip/hyperparameters.json" not in keys
    assert "up/model/deepracer_checkpoints.json" in keys  # core's commit objects stay


def test_a_plan_extension_bug_names_the_plugin() -> None:
    class Broken:
        @hookimpl
        def drtransfer_extend_plan(self, plan: ModelPlan) -> None:
            raise ValueError("bad key")

    model = make_inventory()
    plan = ModelPlan("0", ObjectLocation("upload", "target", "up/"))
    with pytest.raises(PluginError, match=r"^The plugin 'broken-plan' failed while extending the plan of run 0"):
        host_with(("broken-plan", Broken())).extend_plan(plan, model, model.run)


# ---- registries -----------------------------------------------------------------------------------


class Registers:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def drtransfer_register_importers(self, register: Registry[Any]) -> None:
        register(self.name, f"importer-{self.name}", "an import target")

    @hookimpl
    def drtransfer_register_packagers(self, register: Registry[Any]) -> None:
        register(self.name, f"packager-{self.name}", "an archive format")

    @hookimpl
    def drtransfer_register_notifiers(self, register: Registry[Any]) -> None:
        register(self.name, f"notifier-{self.name}", "a notifier kind")


def test_hook_drtransfer_register_importers() -> None:
    importers = host_with(("a", Registers("droa")), ("b", Registers("console"))).importers()
    assert importers.names() == ["console", "droa"]
    assert importers.get("droa") == "importer-droa"
    assert {r.name: r.plugin for r in importers} == {"droa": "a", "console": "b"}
    with pytest.raises(ConfigError, match=r"Unknown import target 'car'; known: console, droa\."):
        importers.get("car")


def test_hook_drtransfer_register_packagers() -> None:
    packagers = host_with(("a", Registers("tar.gz"))).packagers()
    assert packagers.get("tar.gz") == "packager-tar.gz"
    assert [r.plugin for r in packagers] == ["a"]


def test_hook_drtransfer_register_notifiers() -> None:
    kinds = host_with(("a", Registers("jsonl"))).notifier_kinds()
    assert kinds.get("jsonl") == "notifier-jsonl"
    assert [(r.name, r.description, r.plugin) for r in kinds] == [("jsonl", "a notifier kind", "a")]


def test_a_name_registered_twice_names_both_plugins() -> None:
    host = host_with(("first", Registers("droa")), ("second", Registers("droa")))
    with pytest.raises(PluginError) as info:
        host.importers()
    assert str(info.value) == (
        "The import target 'droa' is registered twice, by plugin 'second' and by plugin 'first'; "
        "disable one of them with --disable-plugin."
    )


def test_a_registration_bug_names_the_plugin() -> None:
    class Broken:
        @hookimpl
        def drtransfer_register_packagers(self, register: Registry[Any]) -> None:
            register("zip")  # type: ignore[call-arg]

    with pytest.raises(
        PluginError, match=r"^The plugin 'broken-zip' failed while registering its package formats \(TypeError"
    ):
        host_with(("broken-zip", Broken())).packagers()


# ---- notification ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def drtransfer_notify(self, event: Event) -> None:
        self.events.append(event)


class Raises:
    calls = 0

    @hookimpl
    def drtransfer_notify(self, event: Event) -> None:
        Raises.calls += 1
        raise RuntimeError(f"cannot handle {event.name}")


class TakesNothing:
    calls = 0

    @hookimpl
    def drtransfer_notify(self) -> None:  # a subset of the spec's arguments is allowed
        TakesNothing.calls += 1


def test_hook_drtransfer_notify() -> None:
    """A plugin that raises never stops the others and is reported once, however many events failed."""
    recorder = Recorder()
    Raises.calls = TakesNothing.calls = 0
    host = host_with(("recorder", recorder), ("raises", Raises()), ("takes-nothing", TakesNothing()))
    events: list[Event] = [
        BatchStarted(command="upload", runs=["0", "1"], bytes_planned=10),
        BatchFinished(command="upload", succeeded=2, failed=0, bytes=10, seconds=1.0),
    ]
    notifications = open_notifications(host, [], stderr=io.StringIO())
    for event in events:
        notifications.emit(event)
    failures = notifications.close(timeout=20)
    assert recorder.events == events
    assert TakesNothing.calls == 2
    assert Raises.calls == 2
    assert len(failures) == 1
    assert failures[0].startswith("plugin 'raises': ")
    assert "RuntimeError: cannot handle batch_" in failures[0]
    assert failures[0].endswith("(2 of 2 event(s) not delivered)")


def test_notify_implementations_are_isolated_callables_in_call_order() -> None:
    recorder = Recorder()
    host = host_with(("recorder", recorder), ("raises", Raises()))
    implementations = host.notify_implementations()
    assert [name for name, _ in implementations] == ["raises", "recorder"]  # LIFO, as pluggy calls them
    event = BatchStarted(command="upload", runs=["0"], bytes_planned=1)
    for name, send in implementations:
        if name == "raises":
            with pytest.raises(RuntimeError):
                send(event)
        else:
            send(event)
    assert recorder.events == [event]


def test_a_failing_plugin_module_message_is_one_line(broken_distribution: Path) -> None:
    (broken_distribution / "drtransfer_broken.py").write_text(
        textwrap.dedent(
            """
            raise RuntimeError("two\\nlines")
            """
        )
    )
    with pytest.raises(PluginError) as info:
        get_plugin_manager(environ={})
    assert str(info.value) == (
        "The plugin 'broken' (distribution drtransfer-broken) failed to load (RuntimeError: two lines); "
        "fix its installation or disable it with --disable-plugin broken."
    )


def test_a_new_style_wrapper_sees_the_selection() -> None:
    """Wrappers are allowed on the firstresult selection hook (e.g. for auditing)."""
    seen: list[str] = []

    class Audit:
        @hookimpl(wrapper=True)
        def drtransfer_select_checkpoint(self, expression: str) -> Generator[None, Selection, Selection]:
            selection = yield
            seen.append(f"{expression} -> {selection.checkpoint.number}")
            return selection

    model = make_inventory((1, 2))
    host = host_with(("checkpoints", checkpoints_plugin), ("audit", Audit()))
    assert host.select_checkpoint("best", model, model.run).checkpoint.number == 2
    assert seen == ["best -> 2"]


def test_a_wrapper_on_checkpoint_expressions_is_refused() -> None:
    class Wraps:
        @hookimpl(wrapper=True)
        def drtransfer_checkpoint_expressions(self) -> Iterator[None]:
            return (yield)

    with pytest.raises(PluginError, match=r"implements drtransfer_checkpoint_expressions as a wrapper"):
        host_with(("wraps", Wraps()))
