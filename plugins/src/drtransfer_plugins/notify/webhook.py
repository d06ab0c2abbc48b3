"""The webhook notifier: one JSON POST per event, in a Slack, Discord, Teams or generic format.

URL forms: ``https://...`` (format chosen from the host: hooks.slack.com, discord.com/api/webhooks,
Teams/Power Automate hosts, else generic JSON) and ``slack+``, ``discord+``, ``teams+`` or ``json+``
before an ``http(s)://`` URL to force a format. Each POST has a timeout; 5xx, 408, 429 answers and
network errors are retried with exponential backoff (``Retry-After`` honoured, capped), a bounded
number of times. stdlib ``urllib`` only; proxies come from the usual environment variables, except
for loopback hosts.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from drtransfer import __version__
from drtransfer.errors import ConfigError
from drtransfer.events import Event
from drtransfer.notifying import NotifierError, redact_url
from drtransfer_plugins.notify.presets import PRESETS, Preset, build_payload, detect_preset

CHAT_DEFAULT_EVENTS = frozenset({"batch_finished"})
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_RETRIED_STATUSES = {408, 429}
_READ_LIMIT = 64 * 1024
_NAMES: dict[Preset, str] = {"slack": "Slack", "discord": "Discord", "teams": "Teams", "json": "JSON"}


@dataclass(frozen=True)
class _Outcome:
    reason: str
    retry: bool
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


class WebhookNotifier:
    """POSTs each event as JSON in ``preset``'s format; raises :class:`NotifierError` when an event
    could not be delivered after ``attempts`` tries."""

    def __init__(
        self,
        url: str,
        preset: Preset,
        *,
        timeout: float,
        attempts: int,
        backoff: float,
        max_backoff: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url
        self.preset = preset
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self.label = f"{_NAMES[preset]} webhook {redact_url(url)}"
        self.default_events = None if preset == "json" else CHAT_DEFAULT_EVENTS
        handlers: list[urllib.request.BaseHandler] = []
        if (urlsplit(url).hostname or "") in _LOOPBACK:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.label})"

    def send(self, event: Event) -> None:
        body = json.dumps(build_payload(self.preset, event)).encode()
        outcome: _Outcome | None = None
        for attempt in range(1, self._attempts + 1):
            outcome = self._post(body)
            if outcome is None:
                return
            if not outcome.retry or attempt == self._attempts:
                break
            delay = outcome.retry_after if outcome.retry_after is not None else self._backoff * 2 ** (attempt - 1)
            self._sleep(min(delay, self._max_backoff))
        assert outcome is not None
        raise NotifierError(f"{outcome.reason} after {attempt} attempt(s)")

    def _post(self, body: bytes) -> _Outcome | None:
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"deepracer-transfer/{__version__}"},
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read(_READ_LIMIT)
            return None
        except urllib.error.HTTPError as error:
            error.close()
            status = error.code
            return _Outcome(
                f"HTTP {status} {error.reason}".rstrip(),
                retry=status >= 500 or status in _RETRIED_STATUSES,
                retry_after=_retry_after(error.headers.get("Retry-After") if error.headers else None),
            )
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                return _Outcome(f"no answer within {self._timeout:g} s", retry=True)
            reason = error.reason
            what = reason.strerror if isinstance(reason, OSError) and reason.strerror else type(reason).__name__
            return _Outcome(f"cannot connect ({what})", retry=True)
        except TimeoutError:
            return _Outcome(f"no answer within {self._timeout:g} s", retry=True)
        except (http.client.HTTPException, OSError) as error:
            return _Outcome(f"connection failed ({type(error).__name__})", retry=True)


class WebhookFactory:
    """The ``webhook`` notifier kind."""

    fallback = False
    forms: Sequence[str] = (
        "https://URL (JSON POST; Slack, Discord and Teams webhook URLs are recognised by host)",
        "slack+URL, discord+URL, teams+URL or json+URL with an http(s):// URL (force a message format)",
    )

    def __init__(
        self, *, timeout: float = 10.0, attempts: int = 3, backoff: float = 1.0, max_backoff: float = 10.0
    ) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff

    @staticmethod
    def _split(url: str) -> tuple[Preset | None, str]:
        scheme = url.partition("://")[0]
        prefix, plus, base = scheme.lower().rpartition("+")
        if not plus:
            return None, url
        for preset in PRESETS:
            if prefix == preset:
                return preset, base + url[len(scheme) :]
        return None, url

    def accepts(self, url: str) -> bool:
        preset, rest = self._split(url)
        if preset is None and "+" in url.partition("://")[0]:
            return False
        return rest.partition("://")[0].lower() in ("http", "https")

    def create(self, url: str) -> WebhookNotifier:
        forced, rest = self._split(url)
        try:
            parts = urlsplit(rest)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(
                f"The notify URL {redact_url(url)} is not a valid URL; check its host and port."
            ) from None
        if not parts.hostname:
            raise ConfigError(f"The notify URL {redact_url(url)} has no host; give the full webhook URL.")
        preset = forced or detect_preset(parts.hostname, parts.path)
        return WebhookNotifier(
            rest,
            preset,
            timeout=self.timeout,
            attempts=self.attempts,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
        )

    def __repr__(self) -> str:
        return f"WebhookFactory(timeout={self.timeout}, attempts={self.attempts})"
