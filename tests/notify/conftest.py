"""Fixtures of the notification tests: local receivers and plugin hosts with the built-in notifiers."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drtransfer import hookimpl
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.registry import Registry
from drtransfer_plugins.notify import AppriseFactory, WebhookFactory
from tests.notify.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """``receiver(mode="ok"|"fail"|"stall", status=200)``: a recording HTTP server, stopped after the test."""
    started: list[Receiver] = []

    def start(mode: str = "ok", status: int = 200) -> Receiver:
        server = Receiver(mode, status)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def notify_plugin() -> Any:
    """The built-in notify plugin, loaded through its entry point as the CLI loads it."""
    (entry,) = [ep for ep in importlib.metadata.entry_points(group="drtransfer") if ep.name == "notify"]
    return entry.load()


class QuickNotifiers:
    """The built-in notifier kinds with short timeouts and backoff, so failing receivers fail fast."""

    def __init__(self, **webhook: Any) -> None:
        self.webhook = WebhookFactory(**webhook)

    @hookimpl
    def drtransfer_register_notifiers(self, register: Registry[Any]) -> None:
        register("webhook", self.webhook, "webhook with test timeouts")
        register("apprise", AppriseFactory(), "apprise")


def make_host(*plugins: tuple[str, object]) -> PluginHost:
    return get_plugin_manager(load_entrypoints=False, extra_plugins=plugins)
