"""What every job shares: the subscriber interface, the confirmation callback and the notification
lifecycle (open before anything is written, every event to subscribers and notifiers, close at the end).

A job is one whole command (``upload``, ``import_models``, ``package_cars``) run from a typed request.
It never prints: whoever runs it renders results and progress through subscribers, and asks the user
through the ``confirm`` callback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from drtransfer.engine import TransferSubscriber
from drtransfer.errors import ConfigError
from drtransfer.events import Event
from drtransfer.notifying import NotificationDispatcher, collect_notify_urls, open_notifications
from drtransfer.plugins import PluginHost
from drtransfer.runconfig import RunConfig


class JobSubscriber(TransferSubscriber):
    """Receives a job's events in the calling process; override what you need.

    The engine's events (``on_start``, ``on_progress``, ``on_retry``, ``on_operation``,
    ``on_model_done``) come from :class:`~drtransfer.engine.TransferSubscriber`; a job adds its typed
    events (:mod:`drtransfer.events`: batch started, checkpoint selected, model uploaded or failed,
    imports, car packages, batch finished), the same ones notifiers get.
    """

    def on_prepared(self, prepared: Sequence[Any], **kwargs: Any) -> None:
        """Everything the job is about to do (an upload's prepared models), before the confirmation."""

    def on_event(self, event: Event, **kwargs: Any) -> None:
        """One job event, in the order the job emits them."""


class Declined(ConfigError):
    """The confirmation said no: nothing was written. ``exit_code`` is the command's (DRfC's commands
    exit 1 on "Aborting.")."""

    def __init__(self, message: str = "Aborted: nothing was written.", *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Notifications:
    """Where a job's events go besides its subscribers: notification URLs (``--notify``, plus
    ``DRTRANSFER_NOTIFY`` from ``environ`` and the run files), the ``log://`` notifier with ``verbose``."""

    urls: Sequence[str] = ()
    verbose: bool = False
    log_stream: TextIO | None = None
    environ: Mapping[str, str] | None = field(default=None, repr=False)  # default: os.environ


class EventSink:
    """The job's side of events: each goes to every subscriber and to the notification dispatcher."""

    def __init__(self, dispatcher: NotificationDispatcher, subscribers: Sequence[TransferSubscriber]) -> None:
        self.dispatcher = dispatcher
        self.subscribers = [s for s in subscribers if isinstance(s, JobSubscriber)]

    def prepared(self, items: Sequence[Any]) -> None:
        for subscriber in self.subscribers:
            subscriber.on_prepared(items)

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber.on_event(event)
        self.dispatcher.emit(event)


@contextmanager
def notifications_open(
    host: PluginHost,
    runs: Sequence[RunConfig],
    notifications: Notifications,
    subscribers: Sequence[TransferSubscriber],
    failures: list[str],
) -> Iterator[EventSink]:
    """Open the notifiers (a URL nobody takes is a ConfigError here, before any write), yield the sink,
    and close them whatever happens; a notifier that failed is appended to ``failures`` as one line."""
    environ = os.environ if notifications.environ is None else notifications.environ
    dispatcher = open_notifications(
        host,
        collect_notify_urls(notifications.urls, environ, runs),
        verbose=notifications.verbose,
        stderr=notifications.log_stream,
    )
    try:
        yield EventSink(dispatcher, subscribers)
    finally:
        failures.extend(dispatcher.close())


Confirm = Callable[[Sequence[Any]], bool]
"""Asked once per job with everything it is about to write (the prepared items); False declines."""


def always(_: Sequence[Any]) -> bool:
    """The confirmation of a caller that has already decided (``-f``, a notebook)."""
    return True
