"""Which channels reach a destination, from configuration (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .channels import ChannelName, OutboundMessage


@dataclass(frozen=True)
class Routes:
    """Slack when a webhook is configured for the destination, email when SMTP is configured and
    the destination has recipients; the local sink when neither (the embedded default)."""

    slack_destinations: frozenset[str] = frozenset()
    email_destinations: frozenset[str] = frozenset()
    # recipient shown in the notifications row (a channel name or a list of addresses)
    email_recipients: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # destination -> a short, non-secret id of its Slack webhook: destinations sharing one
    # webhook share one throttle bucket (Slack's limit is per webhook)
    slack_webhook_ids: Mapping[str, str] = field(default_factory=dict)

    def throttle_key(self, channel: ChannelName, destination: str, notification_id: str) -> str:
        if channel == "slack":
            return f"slack:{self.slack_webhook_ids.get(destination, destination)}"
        # Email and the local sink have no published rate: a per-message key never waits.
        return f"{channel}:{notification_id}"

    def channels_for(self, destination: str) -> list[ChannelName]:
        channels: list[ChannelName] = []
        if destination in self.slack_destinations:
            channels.append("slack")
        if destination in self.email_destinations:
            channels.append("email")
        return channels or ["local"]

    def recipient(self, channel: ChannelName, destination: str) -> str:
        if channel == "email":
            return ", ".join(self.email_recipients.get(destination, ()))[:320]
        return f"{channel}:{destination}"


def webhook_id(url: str) -> str:
    """A stable, non-secret name for a webhook URL (the URL itself is a credential)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def render_body(channel: ChannelName, message: OutboundMessage) -> str:
    """The stored body for a channel: Slack mrkdwn links, plain `label: url` lines otherwise."""
    if channel == "slack" and message.links:
        buttons = " | ".join(f"<{link.url}|{link.label}>" for link in message.links)
        return f"{message.text}\n{buttons}"
    return message.render_text()
