"""The apprise notifier: any service apprise supports (e-mail, Telegram, ntfy, Pushover, ...).

Needs the optional extra ``drtransfer-plugins[apprise]``. URL forms: ``apprise+<apprise URL>``
(always apprise, e.g. ``apprise+https://hooks.slack.com/...`` to use apprise's own Slack support) or
any URL whose scheme apprise knows (``json://``, ``mailto://``, ``tgram://`` ...). It is a fallback
kind: asked after the other kinds, and never for plain ``http(s)://`` URLs (the webhook notifier's).
apprise keeps its state in memory here (nothing written under the home directory) and applies its
own timeouts (``?cto=`` / ``?rto=`` in the URL, 4 s each by default); it is tried once per event.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import Any

from drtransfer.errors import ConfigError
from drtransfer.events import Event, Level
from drtransfer.notifying import NotifierError, redact_url
from drtransfer_plugins.notify.presets import detail_lines, headline

HUMAN_DEFAULT_EVENTS = frozenset({"batch_finished"})
_PREFIX = "apprise+"
_INSTALL = "install drtransfer-plugins[apprise] (pip install 'drtransfer-plugins[apprise]')"
_TITLE_LIMIT = 250


def _import_apprise() -> Any:
    try:
        return importlib.import_module("apprise")
    except ImportError:
        return None


@functools.cache
def _known_schemes() -> frozenset[str] | None:
    """apprise's URL schemes; ``None`` when apprise is missing or too old to list them (then any
    non-http scheme is taken, and :meth:`AppriseFactory.create` tells what is wrong)."""
    if _import_apprise() is None:
        return None
    try:
        manager: Any = importlib.import_module("apprise.manager_plugins").NotificationManager()
        return frozenset(str(s).lower() for s in manager.schemas())
    except (ImportError, AttributeError):
        return None


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


class AppriseNotifier:
    """Sends each event through one apprise service; raises :class:`NotifierError` when apprise
    reports that it could not deliver."""

    def __init__(self, client: Any, types: dict[Level, Any], label: str) -> None:
        self._client = client
        self._types = types
        self.label = label
        self.default_events = HUMAN_DEFAULT_EVENTS

    def __repr__(self) -> str:
        return f"AppriseNotifier({self.label})"

    def send(self, event: Event) -> None:
        title = headline(event)
        title = title if len(title) <= _TITLE_LIMIT else title[: _TITLE_LIMIT - 1] + "…"
        body = "\n".join([event.summary(), *detail_lines(event)])
        result = self._client.notify(body=body, title=title, notify_type=self._types[event.level()])
        if not result:
            raise NotifierError(_failure_reason(result))


def _failure_reason(result: Any) -> str:
    """apprise's own last warning (2.x results carry their log), else a generic sentence."""
    logs = getattr(result, "logs", None)
    if callable(logs):
        messages = [entry.message for entry in logs() if getattr(entry, "level", "") in ("WARNING", "ERROR")]
        if messages:
            return f"apprise: {str(messages[-1]).strip().rstrip('.')}"
    return "apprise could not deliver the notification"


class AppriseFactory:
    """The ``apprise`` notifier kind (a fallback: asked after the other kinds)."""

    fallback = True
    forms: Sequence[str] = (
        "any apprise URL such as json://, mailto:// or tgram://, or apprise+URL "
        "(needs drtransfer-plugins[apprise]; see https://github.com/caronc/apprise/wiki)",
    )

    def accepts(self, url: str) -> bool:
        if url.lower().startswith(_PREFIX):
            return True
        scheme = _scheme(url)
        if not scheme or scheme in ("http", "https") or "+" in scheme:
            return False
        known = _known_schemes()
        return known is None or scheme in known

    def create(self, url: str) -> AppriseNotifier:
        inner = url[len(_PREFIX) :] if url.lower().startswith(_PREFIX) else url
        apprise = _import_apprise()
        if apprise is None:
            raise ConfigError(f"The notify URL {redact_url(inner)} needs apprise, which is not installed; {_INSTALL}.")
        try:
            asset = apprise.AppriseAsset(storage_mode="memory")
        except TypeError:  # apprise before persistent storage (< 1.9)
            asset = apprise.AppriseAsset()
        client = apprise.Apprise(asset=asset)
        if not client.add(inner):
            raise ConfigError(
                f"apprise cannot use the notify URL {redact_url(inner)}; check it against apprise's page for "
                "that service (https://github.com/caronc/apprise/wiki)."
            )
        kinds = apprise.NotifyType
        types: dict[Level, Any] = {
            "info": kinds.INFO,
            "success": kinds.SUCCESS,
            "warning": kinds.WARNING,
            "failure": kinds.FAILURE,
        }
        return AppriseNotifier(client, types, f"apprise {redact_url(inner)}")

    def __repr__(self) -> str:
        return "AppriseFactory()"
