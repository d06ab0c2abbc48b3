"""Notifications: notifiers built from ``--notify`` URLs, and a dispatcher that keeps them off the
transfer's path.

A command builds one :class:`NotificationDispatcher` with :func:`open_notifications` *before* any
transfer starts (a bad URL is a :class:`~drtransfer.errors.ConfigError` then), calls
:meth:`~NotificationDispatcher.emit` with :mod:`drtransfer.events` as work progresses (it never blocks
and never raises), and :meth:`~NotificationDispatcher.close` at the end, which waits a bounded time
and returns one line per notifier or plugin that failed, with every secret redacted::

    urls = collect_notify_urls(flag_urls, os.environ, runs)
    notifications = open_notifications(host, urls, verbose=verbose, stderr=sys.stderr)
    try:
        notifications.emit(BatchStarted(command="upload", runs=[...], bytes_planned=n))
        ...
    finally:
        for line in notifications.close():
            print(f"warning: notification failed: {line}", file=sys.stderr)

Each notifier and each ``drtransfer_notify`` implementation gets its own queue and thread, so a slow
one delays nobody; one that failed for ``give_up_after`` events in a row gets no more events.

URL forms: ``log://`` (core; also on with ``-v``), and whatever the registered notifier kinds accept
(``drtransfer_register_notifiers``: webhooks and apprise in drtransfer-plugins). A trailing
``#events=NAME,NAME`` or ``#events=all`` chooses the events a URL receives (``#events:`` in DRfC run
files, which cannot hold a second ``=``); it is removed before the URL reaches its notifier.
"""

from __future__ import annotations

import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable
from urllib.parse import urlsplit

from drtransfer.errors import ConfigError, DrTransferError, PluginError
from drtransfer.events import EVENT_NAMES, Event

if TYPE_CHECKING:
    from drtransfer.plugins import PluginHost
    from drtransfer.registry import Registration
    from drtransfer.runconfig import RunConfig

NOTIFY_ENV = "DRTRANSFER_NOTIFY"
DEFAULT_CLOSE_TIMEOUT = 30.0
"""Seconds :meth:`NotificationDispatcher.close` waits by default for notifiers to drain."""

LOG_FORM = "log:// (one line per event on stderr; also on with -v)"


# ---- protocols ------------------------------------------------------------------------------------


@runtime_checkable
class Notifier(Protocol):
    """Delivers events to one destination.

    ``send`` raises on failure (preferably :class:`NotifierError` with a one-sentence reason); the
    dispatcher isolates and reports it. ``label`` names the destination in messages and must not
    contain a secret (use :func:`redact_url`). A notifier may also have a ``default_events``
    attribute (a set of event names, or ``None`` for every event): what the URL receives when it has
    no ``#events=`` option; chat services use it to receive only the end of a batch.
    """

    @property
    def label(self) -> str: ...

    def send(self, event: Event) -> None: ...


@runtime_checkable
class NotifierFactory(Protocol):
    """What a plugin registers with ``register(name, factory, description)`` in
    ``drtransfer_register_notifiers``.

    ``forms`` describes the URLs it accepts, one human string each, for the message shown when no
    kind accepts a URL. Non-``fallback`` kinds are asked first (in registration order), then
    ``fallback`` ones (catch-alls such as apprise). ``create`` raises
    :class:`~drtransfer.errors.ConfigError` for an unusable URL, naming it only through
    :func:`redact_url`.
    """

    @property
    def forms(self) -> Sequence[str]: ...

    @property
    def fallback(self) -> bool: ...

    def accepts(self, url: str) -> bool: ...

    def create(self, url: str) -> Notifier: ...


class NotifierError(Exception):
    """A notifier could not deliver an event; ``str(error)`` is the reason, without secrets."""


# ---- secrets --------------------------------------------------------------------------------------

# Schemes whose host part is a host name; in every other scheme (apprise's tgram://, discord://,
# slack:// ...) the "host" is often a token and is hidden too.
_HOST_SCHEMES = frozenset({"http", "https", "json", "jsons", "xml", "xmls", "form", "forms", "log"})
# A URL in a text; trailing sentence punctuation is not part of it.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s'\"<>()\[\]{}]*[^\s'\"<>()\[\]{}.,;:!?])?")
_MIN_SECRET_PIECE = 6


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X`` -> ``https://hooks.slack.com/…``: the scheme and
    host only, never user, password, path, query or fragment (where webhook tokens live)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "…"
    base = scheme.lower().rsplit("+", 1)[-1]
    if base not in _HOST_SCHEMES:
        return f"{scheme}://…" if rest else f"{scheme}://"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = netloc.rpartition("@")[2]
    return f"{scheme}://{host}/…" if rest[len(netloc) :].strip("/") else f"{scheme}://{host}"


def _secret_pieces(url: str) -> list[str]:
    """The parts of a configured URL that may show up on their own in an error text: the URL, its
    path and query, token-like path segments and query values, user and password."""
    scheme, _, rest = url.partition("://")
    pieces = {url, rest}
    try:
        parts = urlsplit(url)
    except ValueError:
        return sorted((p for p in pieces if len(p) >= _MIN_SECRET_PIECE), key=len, reverse=True)
    pieces |= {parts.path, parts.query, parts.fragment}
    segments = re.split(r"[/&=?#,;]", f"{parts.path}?{parts.query}#{parts.fragment}")
    # Tokens carry digits or are long; plain words such as "services" or "webhooks" stay readable.
    pieces |= {s for s in segments if re.search(r"\d", s) or len(s) >= 12}
    if scheme.lower().rsplit("+", 1)[-1] not in _HOST_SCHEMES:
        pieces.add(parts.netloc)
    found = sorted((p for p in pieces if len(p) >= _MIN_SECRET_PIECE), key=len, reverse=True)
    userinfo = parts.netloc.rpartition("@")[0]
    return found + [p for p in {userinfo, *userinfo.split(":")} if len(p) >= 3]


def redact_text(text: str, urls: Iterable[str] = (), *, every_url: bool = True) -> str:
    """Hide every piece of the given ``urls`` (paths, tokens, passwords) that appears in ``text``
    and, with ``every_url``, show any other URL in it as :func:`redact_url` does."""
    if every_url:
        text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    for url in urls:
        for piece in _secret_pieces(url):
            text = text.replace(piece, "…")
    return text


# ---- URL options and sources ----------------------------------------------------------------------

# ``#events:`` is the same option for DRfC run files, which cannot hold a second '='.
_EVENTS_OPTION = re.compile(r"#events[=:]")
_LIST_SEPARATOR = re.compile(r"\s+|,(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def split_notify_list(value: str) -> list[str]:
    """``DRTRANSFER_NOTIFY``'s value: URLs separated by whitespace or commas."""
    return [item.strip(", ") for item in _LIST_SEPARATOR.split(value) if item.strip(", ")]


def split_events_option(url: str) -> tuple[str, frozenset[str] | None]:
    """``URL#events=a,b`` (or ``URL#events:a,b``) -> ``(URL, {"a", "b"})``; ``None`` when the option
    is absent or ``all``."""
    matches = list(_EVENTS_OPTION.finditer(url))
    if not matches:
        return url, None
    base, spec = url[: matches[-1].start()], url[matches[-1].end() :]
    names = {name.strip() for name in re.split(r"[,+\s]+", spec) if name.strip()}
    if names == {"all"}:
        return base, None
    unknown = sorted(names - EVENT_NAMES)
    if unknown or not names:
        raise ConfigError(
            f"Unknown event(s) {', '.join(unknown) or '(none given)'} in the #events= option of the notify "
            f"URL {redact_url(base)}; use 'all' or any of: {', '.join(sorted(EVENT_NAMES))}."
        )
    return base, frozenset(names)


def collect_notify_urls(flags: Sequence[str], environ: Mapping[str, str], runs: Iterable[RunConfig] = ()) -> list[str]:
    """Every notify URL of a command, in order and without duplicates: ``--notify`` flags, then
    ``DRTRANSFER_NOTIFY`` from the environment, then ``DRTRANSFER_NOTIFY`` of each run's files
    (``RunConfig.values``). A URL from one run file receives the events of the whole command."""
    urls: list[str] = [url.strip() for url in flags if url.strip()]
    urls += split_notify_list(environ.get(NOTIFY_ENV, ""))
    for run in runs:
        urls += split_notify_list(run.values.get(NOTIFY_ENV, ""))
    return list(dict.fromkeys(urls))


# ---- the log notifier (core: -v must work with every plugin disabled) -----------------------------


class LogNotifier:
    """One line per event on ``stream`` (stderr by default, looked up when writing)."""

    label = "log (stderr)"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, event: Event) -> None:
        line = f"[{event.name}] {event.summary()}" + "".join(f"; {detail}" for detail in event.details())
        stream = self._stream or sys.stderr
        stream.write(line.replace("\n", " ") + "\n")
        stream.flush()

    def __repr__(self) -> str:
        return f"LogNotifier({self.label})"


# ---- the dispatcher -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationTarget:
    """One destination of the dispatcher: a notifier's ``send`` or a plugin's ``drtransfer_notify``."""

    label: str
    send: Callable[[Event], None]
    events: frozenset[str] | None = None  # None: every event

    def __repr__(self) -> str:
        return f"NotificationTarget({self.label!r})"


_STOP = object()


class _Channel:
    """A target's queue, thread and delivery record."""

    def __init__(self, target: NotificationTarget, index: int, max_pending: int, give_up_after: int) -> None:
        self.target = target
        self._max_pending = max_pending
        self._give_up_after = give_up_after
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.pending = self.accepted = self.dropped = 0
        self.delivered = self.failed = self.skipped = 0
        self.in_a_row = 0
        self.last_reason = ""
        self.gave_up = False
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"drtransfer-notify-{index}", daemon=True)
        self.thread.start()

    def offer(self, event: Event) -> None:
        if self.target.events is not None and event.name not in self.target.events:
            return
        with self._lock:
            if self.pending >= self._max_pending:
                self.dropped += 1
                return
            self.pending += 1
            self.accepted += 1
        self._queue.put(event)

    def stop(self) -> None:
        self._queue.put(_STOP)

    def _run(self) -> None:
        # Ctrl-C and SIGTERM belong to the main thread: a signal that lands on this thread instead would
        # leave the main thread blocked (in the confirmation question, say) and the command hanging.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while (item := self._queue.get()) is not _STOP:
            assert isinstance(item, Event)
            try:
                if self.gave_up or self.abandoned:
                    self.skipped += 1
                    continue
                self.target.send(item)
            except BaseException as error:  # isolation is the point; a worker thread never sees ^C
                self.failed += 1
                self.in_a_row += 1
                self.last_reason = _describe(error)
                self.gave_up = self.in_a_row >= self._give_up_after
            else:
                self.delivered += 1
                self.in_a_row = 0
            finally:
                with self._lock:
                    self.pending -= 1

    def failure_line(self, timeout: float) -> str | None:
        with self._lock:
            pending = self.pending
        missed = self.failed + self.skipped + self.dropped + pending
        if missed == 0:
            return None
        reasons = []
        if self.last_reason:
            reasons.append(self.last_reason)
        if self.gave_up:
            reasons.append(f"gave up after {self._give_up_after} failed events in a row")
        if self.dropped:
            reasons.append(f"{self.dropped} event(s) dropped because {self._max_pending} were already waiting")
        if pending:
            reasons.append(f"did not finish within {timeout:g} s")
        total = self.accepted + self.dropped
        return f"{self.target.label}: {'; '.join(reasons)} ({missed} of {total} event(s) not delivered)"


def _describe(error: BaseException) -> str:
    text = str(error).strip().rstrip(".")
    if isinstance(error, NotifierError | DrTransferError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class NotificationDispatcher:
    """Fans events out to targets, each on its own thread; see the module docstring.

    :param targets: the destinations.
    :param secrets: the configured notify URLs; their tokens are redacted from every failure line.
    :param max_pending: events a target may have waiting; more are dropped (and reported).
    :param give_up_after: a target failing this many events in a row gets no more.
    """

    def __init__(
        self,
        targets: Sequence[NotificationTarget],
        *,
        secrets: Sequence[str] = (),
        max_pending: int = 1000,
        give_up_after: int = 3,
    ) -> None:
        self._secrets = list(secrets)
        self._targets = [NotificationTarget(redact_text(t.label, self._secrets), t.send, t.events) for t in targets]
        self._channels = [
            _Channel(target, index, max_pending, give_up_after) for index, target in enumerate(self._targets)
        ]
        self._closed = False
        self._failures: list[str] = []

    @property
    def labels(self) -> list[str]:
        """The destinations, redacted (for ``-v``: "notifying: ...")."""
        return [target.label for target in self._targets]

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every target that wants it; never blocks, never raises. Ignored after
        :meth:`close`."""
        if self._closed:
            return
        for channel in self._channels:
            channel.offer(event)

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> list[str]:
        """Wait at most ``timeout`` seconds for every target to finish its queue; return one line per
        target that missed events (reason and count), secrets redacted. Calling it again returns the
        same lines."""
        if self._closed:
            return list(self._failures)
        self._closed = True
        deadline = time.monotonic() + timeout
        for channel in self._channels:
            channel.stop()
        for channel in self._channels:
            channel.thread.join(max(0.0, deadline - time.monotonic()))
            if channel.thread.is_alive():
                channel.abandoned = True  # it skips what is left once its current send returns
        lines = (channel.failure_line(timeout) for channel in self._channels)
        self._failures = [redact_text(line, self._secrets) for line in lines if line]
        return list(self._failures)

    @property
    def failures(self) -> list[str]:
        """What :meth:`close` returned (empty before)."""
        return list(self._failures)

    def __enter__(self) -> NotificationDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NotificationDispatcher({self.labels!r})"


# ---- building a dispatcher from the plugin host and URLs ------------------------------------------


def _ordered_kinds(host: PluginHost) -> list[Registration[NotifierFactory]]:
    kinds: list[Registration[NotifierFactory]] = []
    for registration in host.notifier_kinds():
        if not isinstance(registration.value, NotifierFactory):
            raise PluginError(
                f"The notifier kind {registration.name!r} of plugin {registration.plugin!r} is not a "
                "NotifierFactory (forms, fallback, accepts(url), create(url)); fix or disable the plugin."
            )
        kinds.append(registration)
    return [r for r in kinds if not r.value.fallback] + [r for r in kinds if r.value.fallback]


def accepted_forms(host: PluginHost) -> list[str]:
    """Every accepted URL form, for help texts and the unknown-URL message."""
    return [LOG_FORM, *(form for kind in _ordered_kinds(host) for form in kind.value.forms)]


def _create_notifier(host: PluginHost, url: str) -> Notifier:
    kinds = _ordered_kinds(host)
    for kind in kinds:
        try:
            if not kind.value.accepts(url):
                continue
            notifier = kind.value.create(url)
        except DrTransferError as error:
            # Factories name URLs through redact_url; this only catches a forgotten token.
            raise ConfigError(redact_text(str(error), [url], every_url=False)) from None
        except Exception as error:  # a third-party factory's bug, reported as such
            raise PluginError(
                f"The notifier kind {kind.name!r} of plugin {kind.plugin!r} failed on the notify URL "
                f"{redact_url(url)}: {redact_text(_describe(error), [url])}; fix or disable the plugin."
            ) from None
        if not isinstance(notifier, Notifier):
            raise PluginError(
                f"The notifier kind {kind.name!r} of plugin {kind.plugin!r} returned no Notifier "
                "(label, send(event)); fix or disable the plugin."
            )
        return notifier
    hint = "" if kinds else " (install drtransfer-plugins for webhooks, Slack, Discord, Teams and apprise)"
    raise ConfigError(
        f"No notifier takes the notify URL {redact_url(url)}{hint}; accepted forms: "
        + "; ".join(accepted_forms(host))
        + "."
    )


def _default_events(notifier: Notifier) -> frozenset[str] | None:
    events = getattr(notifier, "default_events", None)
    return frozenset(events) if isinstance(events, set | frozenset | list | tuple) else None


def open_notifications(
    host: PluginHost,
    urls: Sequence[str],
    *,
    verbose: bool = False,
    stderr: TextIO | None = None,
    max_pending: int = 1000,
    give_up_after: int = 3,
) -> NotificationDispatcher:
    """Build the dispatcher of one command: the log notifier (with ``verbose`` or ``log://``), one
    notifier per URL (chosen by the registered notifier kinds) and every ``drtransfer_notify``
    implementation. Raises :class:`~drtransfer.errors.ConfigError` for a URL nobody takes or that
    its kind refuses; call it before any transfer starts."""
    targets: list[NotificationTarget] = []
    log_events: frozenset[str] | None = None
    log_wanted = verbose
    for raw in dict.fromkeys(url.strip() for url in urls if url.strip()):
        url, events = split_events_option(raw)
        if url.lower().startswith("log:"):
            log_wanted, log_events = True, events
            continue
        notifier = _create_notifier(host, url)
        chosen = events if url != raw else _default_events(notifier)
        targets.append(NotificationTarget(notifier.label, notifier.send, chosen))
    if log_wanted:
        log = LogNotifier(stderr)
        targets.insert(0, NotificationTarget(log.label, log.send, log_events))
    for plugin_name, function in host.notify_implementations():
        targets.append(NotificationTarget(f"plugin {plugin_name!r}", function))
    return NotificationDispatcher(targets, secrets=list(urls), max_pending=max_pending, give_up_after=give_up_after)
