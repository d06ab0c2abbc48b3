"""Built-in notifiers: webhooks (generic JSON, Slack, Discord, Microsoft Teams) and apprise.

``--notify URL`` (repeatable), ``DRTRANSFER_NOTIFY`` or a run file's ``DRTRANSFER_NOTIFY`` choose them;
core's :mod:`drtransfer.notifying` picks the kind for each URL and runs it off the transfer's path.
See ``docs/notifications.md``.
"""

from __future__ import annotations

from typing import Any

from drtransfer import hookimpl
from drtransfer.registry import Registry
from drtransfer_plugins.notify.apprise_notifier import AppriseFactory, AppriseNotifier
from drtransfer_plugins.notify.webhook import WebhookFactory, WebhookNotifier


@hookimpl
def drtransfer_register_notifiers(register: Registry[Any]) -> None:
    register("webhook", WebhookFactory(), "JSON POST to an http(s) URL, in Slack, Discord, Teams or generic format")
    register("apprise", AppriseFactory(), "any service apprise supports (optional extra drtransfer-plugins[apprise])")


__all__ = ["AppriseFactory", "AppriseNotifier", "WebhookFactory", "WebhookNotifier"]
