"""Message formats of the webhook notifier: Slack, Discord, Microsoft Teams and a generic JSON.

Pure functions from an event to the JSON body; the chat formats say the same thing: a headline with
the event's summary and, for a finished batch, its failures (at most :data:`MAX_DETAILS` lines).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from drtransfer import PROJECT_NAME, __version__
from drtransfer.events import Event, Level

Preset = Literal["slack", "discord", "teams", "json"]
PRESETS: tuple[Preset, ...] = ("slack", "discord", "teams", "json")

SOURCE = "deepracer-transfer"
MAX_DETAILS = 20
DISCORD_LIMIT = 2000  # Discord refuses a message "content" longer than this
SLACK_LIMIT = 3900  # Slack truncates "text" beyond 40,000 characters and advises under 4,000

_ICONS: dict[Level, str] = {"info": "ℹ️", "success": "✅", "warning": "⚠️", "failure": "❌"}
_TEAMS_COLOURS: dict[Level, str] = {"info": "Default", "success": "Good", "warning": "Warning", "failure": "Attention"}


def detect_preset(host: str, path: str) -> Preset:
    """The format a webhook URL's host calls for; ``json`` for any other host."""
    host = host.lower().rstrip(".")
    if host == "hooks.slack.com":
        return "slack"
    if host in {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"} and path.startswith(
        "/api/webhooks/"
    ):
        return "discord"
    teams_domains = ("webhook.office.com", "logic.azure.com", "powerautomate.com", "powerplatform.com")
    if any(host == d or host.endswith("." + d) for d in teams_domains) or (
        host == "outlook.office.com" and path.startswith("/webhook")
    ):
        return "teams"
    return "json"


def detail_lines(event: Event) -> list[str]:
    details = event.details()
    if len(details) > MAX_DETAILS:
        return [*details[:MAX_DETAILS], f"… and {len(details) - MAX_DETAILS} more"]
    return details


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(event: Event) -> str:
    return f"{_ICONS[event.level()]} {SOURCE} {event.summary()}"


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions) in "text".
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(event: Event) -> dict[str, Any]:
    """Slack incoming webhook: ``{"text": ...}`` (mrkdwn)."""
    lines = [f"*{_slack_escape(headline(event))}*", *(f"• {_slack_escape(d)}" for d in detail_lines(event))]
    return {"text": _clip("\n".join(lines), SLACK_LIMIT)}


def discord_payload(event: Event) -> dict[str, Any]:
    """Discord webhook: ``{"content": ...}`` of at most 2000 characters, no pings."""
    lines = [f"**{headline(event)}**", *(f"- {d}" for d in detail_lines(event))]
    return {"content": _clip("\n".join(lines), DISCORD_LIMIT), "allowed_mentions": {"parse": []}}


def _fact_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value[:MAX_DETAILS]) + (" …" if len(value) > MAX_DETAILS else "")
    return str(value)


def teams_payload(event: Event) -> dict[str, Any]:
    """Microsoft Teams: an Adaptive Card (1.4) in a ``message`` envelope, the format that Teams
    Workflows webhooks ("Post to a channel when a webhook request is received") and the older
    Office 365 connector webhooks both accept."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": headline(event),
            "weight": "Bolder",
            "wrap": True,
            "color": _TEAMS_COLOURS[event.level()],
        }
    ]
    body += [{"type": "TextBlock", "text": f"- {d}", "wrap": True, "spacing": "None"} for d in detail_lines(event)]
    facts = [
        {"title": key, "value": _fact_value(value)}
        for key, value in event.properties().items()
        if key != "failures" and value not in ("", [])
    ]
    body.append({"type": "FactSet", "facts": facts})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def json_payload(event: Event) -> dict[str, Any]:
    """Generic JSON: the event's name, level, time, summary, details and every property."""
    return {
        "source": SOURCE,
        "tool": PROJECT_NAME,
        "version": __version__,
        "event": event.name,
        "level": event.level(),
        "created": datetime.fromtimestamp(event.created, UTC).isoformat(),
        "summary": event.summary(),
        "details": event.details(),
        "properties": event.properties(),
    }


def build_payload(preset: Preset, event: Event) -> dict[str, Any]:
    if preset == "slack":
        return slack_payload(event)
    if preset == "discord":
        return discord_payload(event)
    if preset == "teams":
        return teams_payload(event)
    return json_payload(event)
