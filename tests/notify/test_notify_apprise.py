"""The apprise notifier, through apprise's own ``json://`` service pointed at a local receiver."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drtransfer.errors import ConfigError
from drtransfer.notifying import open_notifications
from tests.notify.conftest import make_host, notify_plugin
from tests.notify.receiver import FAILURE_REASON, TOKEN, Receiver, full_batch


def apprise_url(server: Receiver, prefix: str = "") -> str:
    return f"{prefix}json://127.0.0.1:{server.port}/apprise/{TOKEN}"


def test_apprise_json_sends_the_end_of_the_batch_by_default(receiver: Callable[..., Receiver]) -> None:
    server = receiver()
    notifications = open_notifications(make_host(("notify", notify_plugin())), [apprise_url(server)])
    for event in full_batch():
        notifications.emit(event)

    assert notifications.close() == []
    (only,) = server.received()
    assert only.path == f"/apprise/{TOKEN}"
    message = only.json()
    assert "upload: 1 succeeded, 1 failed" in message["title"]
    assert message["message"].splitlines()[1] == f"run 1 (models/run-b): {FAILURE_REASON}"
    assert message["type"] == "warning"


def test_apprise_prefix_and_every_event(receiver: Callable[..., Receiver]) -> None:
    server = receiver()
    url = apprise_url(server, prefix="apprise+") + "#events=all"
    notifications = open_notifications(make_host(("notify", notify_plugin())), [url])
    assert notifications.labels == [f"apprise json://127.0.0.1:{server.port}/…"]
    events = full_batch()
    for event in events:
        notifications.emit(event)

    assert notifications.close() == []
    messages = [r.json() for r in server.received()]
    assert [m["message"].splitlines()[0] for m in messages] == [e.summary() for e in events]
    assert [m["type"] for m in messages] == ["info", "info", "info", "success", "failure", "warning"]


def test_apprise_failure_is_reported_once_without_the_token(receiver: Callable[..., Receiver]) -> None:
    server = receiver("fail")
    notifications = open_notifications(make_host(("notify", notify_plugin())), [apprise_url(server)])
    for event in full_batch():
        notifications.emit(event)

    (line,) = notifications.close()
    assert line.startswith(f"apprise json://127.0.0.1:{server.port}/…: apprise: ")
    assert line.endswith("(1 of 1 event(s) not delivered)")
    assert TOKEN not in line
    assert len(server.received()) == 1  # apprise is tried once per event


def test_an_apprise_url_apprise_cannot_use_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"apprise cannot use the notify URL nosuchservice://…") as caught:
        open_notifications(make_host(("notify", notify_plugin())), [f"apprise+nosuchservice://{TOKEN}"])
    assert TOKEN not in str(caught.value)
    assert "https://github.com/caronc/apprise/wiki" in str(caught.value)  # links that are no secret stay whole
