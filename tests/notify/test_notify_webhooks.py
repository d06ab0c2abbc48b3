"""The webhook notifier and its Slack, Discord, Teams and generic JSON formats, against a
local receiver; failing and silent receivers never fail the command and are reported once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from drtransfer.events import BatchFinished, Event
from drtransfer.notifying import open_notifications
from drtransfer_plugins.notify.presets import DISCORD_LIMIT, MAX_DETAILS, build_payload
from drtransfer_plugins.notify.webhook import WebhookFactory
from tests.notify.conftest import QuickNotifiers, make_host, notify_plugin
from tests.notify.receiver import FAILURE_REASON, TOKEN, Receiver, full_batch, wait_until

Payloads = list[dict[str, Any]]


def check_slack(events: list[Event], payloads: Payloads) -> None:
    for event, payload in zip(events, payloads, strict=True):
        assert set(payload) == {"text"}
        assert event.summary().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in payload["text"]
        assert "<" not in payload["text"]  # Slack reads < > & as markup: escaped
    assert "1 succeeded, 1 failed" in payloads[-1]["text"]
    assert "• run 1 (models/run-b): Access denied" in payloads[-1]["text"]
    assert "&amp; &lt;check the policy&gt;" in payloads[-1]["text"]


def check_discord(events: list[Event], payloads: Payloads) -> None:
    for event, payload in zip(events, payloads, strict=True):
        assert set(payload) == {"content", "allowed_mentions"}
        assert payload["allowed_mentions"] == {"parse": []}  # a model name never pings anyone
        assert len(payload["content"]) <= DISCORD_LIMIT
        assert event.summary() in payload["content"]
    assert f"- run 1 (models/run-b): {FAILURE_REASON}" in payloads[-1]["content"]


def check_teams(events: list[Event], payloads: Payloads) -> None:
    colours = []
    for event, payload in zip(events, payloads, strict=True):
        assert payload["type"] == "message"
        (attachment,) = payload["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard"
        assert event.summary() in card["body"][0]["text"]
        colours.append(card["body"][0]["color"])
        facts = {fact["title"]: fact["value"] for fact in card["body"][-1]["facts"]}
        if "run_id" in event.properties():
            assert facts["run_id"] == event.properties()["run_id"]
    assert colours == ["Default", "Default", "Default", "Good", "Attention", "Warning"]
    assert any(FAILURE_REASON in block.get("text", "") for block in payloads[-1]["attachments"][0]["content"]["body"])


def check_json(events: list[Event], payloads: Payloads) -> None:
    assert [p["event"] for p in payloads] == [e.name for e in events]
    for event, payload in zip(events, payloads, strict=True):
        assert payload["summary"] == event.summary()
        assert payload["properties"] == json.loads(json.dumps(event.properties()))
        assert payload["level"] == event.level()
    assert payloads[-1]["details"] == [f"run 1 (models/run-b): {FAILURE_REASON}"]
    assert payloads[-1]["properties"]["failed"] == 1


CHECKS: dict[str, Callable[[list[Event], Payloads], None]] = {
    "slack": check_slack,
    "discord": check_discord,
    "teams": check_teams,
    "json": check_json,
}


@pytest.mark.parametrize("preset", sorted(CHECKS))
def test_each_preset_posts_a_full_batch(receiver: Callable[..., Receiver], preset: str) -> None:
    server = receiver(status=204 if preset == "discord" else 200)  # Discord answers 204 No Content
    notifications = open_notifications(make_host(("notify", notify_plugin())), [f"{preset}+{server.url()}#events=all"])
    events = full_batch()
    for event in events:
        notifications.emit(event)

    assert notifications.close() == []
    received = server.received()
    assert len(received) == len(events)
    assert {r.path for r in received} == {f"/hooks/T0A1B2C3/{TOKEN}"}
    assert {r.headers["Content-Type"] for r in received} == {"application/json"}
    CHECKS[preset](events, [r.json() for r in received])


def test_chat_formats_send_only_the_end_of_a_batch_unless_told(receiver: Callable[..., Receiver]) -> None:
    chat, machine, chosen = receiver(), receiver(), receiver()
    urls = [
        f"slack+{chat.url()}",
        f"json+{machine.url()}",
        f"discord+{chosen.url()}#events=model_failed,batch_finished",
    ]
    notifications = open_notifications(make_host(("notify", notify_plugin())), urls)
    for event in full_batch():
        notifications.emit(event)

    assert notifications.close() == []
    (only,) = chat.received()
    assert "upload: 1 succeeded, 1 failed" in only.json()["text"]
    assert len(machine.received()) == 6
    assert [r.json()["content"].count("FAILED") for r in chosen.received()] == [1, 0]


@pytest.mark.parametrize(
    ("url", "preset"),
    [
        (f"https://hooks.slack.com/services/T0A1B2C3/B0D4E5F6/{TOKEN}", "slack"),
        (f"https://discord.com/api/webhooks/123456789/{TOKEN}", "discord"),
        (f"https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/{TOKEN}/x", "teams"),
        (f"https://prod-27.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig={TOKEN}", "teams"),
        (f"https://example.org/drtransfer/{TOKEN}", "json"),
        (f"json+https://hooks.slack.com/services/T0A1B2C3/B0D4E5F6/{TOKEN}", "json"),
        (f"teams+http://127.0.0.1:8080/{TOKEN}", "teams"),
    ],
)
def test_formats_are_detected_from_well_known_hosts_or_forced(url: str, preset: str) -> None:
    factory = WebhookFactory()
    assert factory.accepts(url)
    notifier = factory.create(url)
    assert notifier.preset == preset
    assert TOKEN not in notifier.label and TOKEN not in repr(notifier)


def test_chat_messages_stay_within_their_limits() -> None:
    event = BatchFinished(
        command="upload",
        succeeded=0,
        failed=400,
        bytes=0,
        seconds=1.0,
        failures=[f"run {i}: " + "x" * 80 for i in range(400)],
    )
    discord = build_payload("discord", event)["content"]
    assert len(discord) <= DISCORD_LIMIT
    slack = build_payload("slack", event)["text"]
    assert f"and {400 - MAX_DETAILS} more" in slack
    assert slack.count("• run ") == MAX_DETAILS


def test_a_receiver_answering_500_is_retried_a_bounded_number_of_times_and_reported_once(
    receiver: Callable[..., Receiver],
) -> None:
    failing, healthy = receiver("fail"), receiver()
    host = make_host(("notify", QuickNotifiers(timeout=5.0, attempts=3, backoff=0.01)))
    notifications = open_notifications(host, [f"json+{failing.url()}", f"json+{healthy.url()}"])
    for event in full_batch():
        notifications.emit(event)

    failures = notifications.close()
    assert len(healthy.received()) == 6  # the other notifier got every event
    assert len(failing.received()) == 9  # 3 attempts for each of 3 events, then it gave up
    (line,) = failures
    assert line.startswith(f"JSON webhook http://127.0.0.1:{failing.port}/…: HTTP 500")
    assert "after 3 attempt(s)" in line and "gave up after 3 failed events in a row" in line
    assert "(6 of 6 event(s) not delivered)" in line
    assert TOKEN not in line
    assert notifications.close() == failures  # reported once: closing again gives the same single line


def test_a_receiver_that_never_answers_times_out_and_is_reported_once(receiver: Callable[..., Receiver]) -> None:
    silent, healthy = receiver("stall"), receiver()
    host = make_host(("notify", QuickNotifiers(timeout=0.5, attempts=2, backoff=0.01)))
    notifications = open_notifications(host, [f"slack+{silent.url()}#events=all", f"json+{healthy.url()}"])
    for event in full_batch():
        notifications.emit(event)

    (line,) = notifications.close()
    assert len(healthy.received()) == 6
    assert len(silent.received()) == 6  # 2 attempts for each of 3 events
    assert f"Slack webhook http://127.0.0.1:{silent.port}/…: no answer within 0.5 s after 2 attempt(s)" in line
    assert "(6 of 6 event(s) not delivered)" in line
    assert TOKEN not in line


def test_close_is_bounded_while_a_notifier_is_still_waiting(receiver: Callable[..., Receiver]) -> None:
    silent = receiver("stall")
    host = make_host(("notify", QuickNotifiers(timeout=20.0, attempts=1)))
    notifications = open_notifications(host, [f"json+{silent.url()}"])
    notifications.emit(full_batch()[0])
    assert wait_until(lambda: len(silent.received()) == 1)

    (line,) = notifications.close(timeout=0.2)
    assert (
        line
        == f"JSON webhook http://127.0.0.1:{silent.port}/…: did not finish within 0.2 s (1 of 1 event(s) not delivered)"
    )
    notifications.emit(full_batch()[1])  # after close: ignored, never raises
    assert notifications.failures == [line]
