"""The notification dispatcher keeps notifiers off the transfer's path, isolates plugins, reports each
failure once without secrets; URLs come from flags, the environment and run files."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from drtransfer import hookimpl
from drtransfer.endpoints import Endpoint
from drtransfer.errors import ConfigError
from drtransfer.events import Event
from drtransfer.notifying import collect_notify_urls, open_notifications, redact_text, redact_url
from drtransfer.runconfig import RunConfig
from tests.notify.conftest import QuickNotifiers, make_host, notify_plugin
from tests.notify.receiver import TOKEN, Receiver, full_batch, wait_until


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def drtransfer_notify(self, event: Event) -> None:
        self.events.append(event)


class Boom:
    @hookimpl
    def drtransfer_notify(self, event: Event) -> None:
        raise RuntimeError(f"cannot post to https://hooks.slack.com/services/T0A1B2C3/B0D4E5F6/{TOKEN}")


class Gate:
    """A plugin that holds its first event until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    @hookimpl
    def drtransfer_notify(self, event: Event) -> None:
        self.entered.set()
        self.release.wait(10)
        self.returned.set()


def test_emit_returns_while_a_notifier_is_still_busy() -> None:
    gate, recorder = Gate(), Recorder()
    notifications = open_notifications(make_host(("gate", gate), ("recorder", recorder)), [])
    events = full_batch()
    for event in events:
        notifications.emit(event)

    assert wait_until(gate.entered.is_set)
    assert not gate.returned.is_set()  # every emit() came back while the gate still held event 1
    assert wait_until(lambda: len(recorder.events) == len(events))  # and the slow one delayed nobody else
    gate.release.set()
    assert notifications.close() == []


def test_a_raising_plugin_is_reported_once_and_the_others_get_every_event(
    receiver: Callable[..., Receiver],
) -> None:
    server, recorder = receiver(), Recorder()
    host = make_host(("boom", Boom()), ("recorder", recorder), ("notify", notify_plugin()))
    notifications = open_notifications(host, [f"json+{server.url()}"])
    events = full_batch()
    for event in events:
        notifications.emit(event)

    failures = notifications.close()
    assert recorder.events == events
    assert [r.json()["event"] for r in server.received()] == [e.name for e in events]
    assert failures == [
        "plugin 'boom': RuntimeError: cannot post to https://hooks.slack.com/…; "
        "gave up after 3 failed events in a row (6 of 6 event(s) not delivered)"
    ]


def test_events_beyond_the_pending_limit_are_dropped_and_reported() -> None:
    gate = Gate()
    notifications = open_notifications(make_host(("gate", gate)), [], max_pending=2)
    for event in full_batch():
        notifications.emit(event)
    gate.release.set()

    assert notifications.close() == [
        "plugin 'gate': 4 event(s) dropped because 2 were already waiting (4 of 6 event(s) not delivered)"
    ]


def test_verbose_logs_one_line_per_event_on_stderr() -> None:
    stderr = io.StringIO()
    notifications = open_notifications(make_host(), [], verbose=True, stderr=stderr)
    for event in full_batch():
        notifications.emit(event)
    assert notifications.close() == []

    lines = stderr.getvalue().splitlines()
    assert [line.split("]")[0] + "]" for line in lines] == [f"[{e.name}]" for e in full_batch()]
    assert lines[-1].startswith("[batch_finished] upload: 1 succeeded, 1 failed, 120.0 MiB in 14.2 s; run 1")


def test_log_url_chooses_events_and_nothing_is_logged_by_default() -> None:
    chosen, quiet = io.StringIO(), io.StringIO()
    # "#events:" is the run-file spelling of "#events="
    with_url = open_notifications(make_host(), ["log://#events:model_failed"], stderr=chosen)
    without = open_notifications(make_host(), [], stderr=quiet)
    for event in full_batch():
        with_url.emit(event)
        without.emit(event)
    assert with_url.close() == [] and without.close() == []

    assert chosen.getvalue().startswith("[model_failed] run 1: FAILED")
    assert len(chosen.getvalue().splitlines()) == 1
    assert quiet.getvalue() == "" and without.labels == []


def test_an_unknown_url_is_refused_before_anything_starts_listing_the_forms() -> None:
    with pytest.raises(ConfigError) as caught:
        open_notifications(make_host(("notify", notify_plugin())), [f"ftp://files.example.org/{TOKEN}"])
    message = str(caught.value)
    assert message.startswith("No notifier takes the notify URL ftp://…; accepted forms: log://")
    assert "slack+URL" in message and "apprise" in message
    assert TOKEN not in message


def test_without_notifier_plugins_the_message_says_what_to_install() -> None:
    with pytest.raises(ConfigError, match=r"install drtransfer-plugins for webhooks") as caught:
        open_notifications(make_host(), [f"https://hooks.slack.com/services/T0A1B2C3/B0D4E5F6/{TOKEN}"])
    assert TOKEN not in str(caught.value)


def test_an_unknown_event_name_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"Unknown event\(s\) batch_done .* known events|batch_done"):
        open_notifications(make_host(("notify", notify_plugin())), [f"https://example.org/{TOKEN}#events=batch_done"])


def test_urls_come_from_flags_environment_and_run_files() -> None:
    endpoint = Endpoint(name="local", url="http://127.0.0.1:9000", region="us-east-1", credentials=None)

    def run(run_id: str, notify: str) -> RunConfig:
        return RunConfig(
            run_id=run_id,
            local=endpoint,
            local_bucket="bucket",
            model_prefix=f"model-{run_id}",
            upload=None,
            upload_bucket="upload",
            upload_prefix=f"model-{run_id}",
            reward_key="custom_files/reward_function.py",
            metrics_prefix=f"model-{run_id}/metrics",
            region="us-east-1",
            run_file=Path(f"run-{run_id}.env"),
            values={"DRTRANSFER_NOTIFY": notify} if notify else {},
        )

    env = {"DRTRANSFER_NOTIFY": "https://a.example/1,json://b.example/2#events=batch_started,batch_finished  log://"}
    runs = [run("0", "https://run0.example/hook mailto://me:pw@mail.example?to=a@x.example,b@x.example"), run("1", "")]
    assert collect_notify_urls(["https://flag.example/x", "https://a.example/1"], env, runs) == [
        "https://flag.example/x",
        "https://a.example/1",
        "json://b.example/2#events=batch_started,batch_finished",
        "log://",
        "https://run0.example/hook",
        "mailto://me:pw@mail.example?to=a@x.example,b@x.example",
    ]


def test_no_secret_in_labels_reprs_or_failure_lines(receiver: Callable[..., Receiver]) -> None:
    server = receiver("fail")
    urls = [
        f"json+{server.url()}",
        f"https://hooks.slack.com/services/T0A1B2C3/B0D4E5F6/{TOKEN}",
        f"discord+https://user:{TOKEN}@discord.example/api/webhooks/1/x",
        f"json://127.0.0.1:{server.port}/{TOKEN}",
    ]
    stderr = io.StringIO()
    host = make_host(("notify", QuickNotifiers(backoff=0.01)), ("boom", Boom()))
    notifications = open_notifications(host, urls, verbose=True, stderr=stderr)
    # batch_started goes to the log, the plugin and the JSON receiver; the chat and apprise URLs wait
    # for batch_finished by default, so nothing leaves 127.0.0.1.
    notifications.emit(full_batch()[0])
    text = "\n".join([repr(notifications), *notifications.labels])
    failures = notifications.close()
    text += "\n".join(failures) + stderr.getvalue()

    assert "hooks.slack.com/…" in text and f"127.0.0.1:{server.port}/…" in text
    assert TOKEN not in text
    assert any(line.startswith("plugin 'boom'") for line in failures)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hooks.slack.com/services/T0/B0/{TOKEN}", "https://hooks.slack.com/…"),
        (f"slack+http://127.0.0.1:8080/{TOKEN}", "slack+http://127.0.0.1:8080/…"),
        (f"https://user:{TOKEN}@host.example", "https://host.example"),
        (f"tgram://{TOKEN}/12345", "tgram://…"),
        (f"mailto://me:{TOKEN}@gmail.com", "mailto://…"),
    ],
)
def test_urls_are_shown_as_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert TOKEN not in redact_text(f"error posting to {url}: /path/{TOKEN}?x=1", [url])


def test_the_apprise_extra_missing_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if drtransfer-plugins[apprise] were not installed
    with pytest.raises(ConfigError) as caught:
        open_notifications(make_host(("notify", notify_plugin())), [f"json://127.0.0.1:9/{TOKEN}"])
    assert "install drtransfer-plugins[apprise]" in str(caught.value)
    assert TOKEN not in str(caught.value)
