"""The one interface every channel implements, and the errors that drive retries.

A channel turns an `OutboundMessage` into a delivery (a Slack post, an email, a row) and reports
a `DeliveryResult`. It never decides about retries itself: it raises `TransientDeliveryError`
when trying again may work (5xx, 429, network) and `PermanentDeliveryError` when it cannot (4xx,
a refused recipient); the Inngest boundary maps those to a step retry / `NonRetriableError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

ChannelName = Literal["slack", "email", "local"]


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one destination (e.g. the `support` Slack webhook, `reviewers` mailbox)."""

    dedup_key: str
    kind: str
    destination: str
    subject: str
    text: str
    links: tuple[Link, ...] = ()
    # small, non-PII facts (ids, levels) kept with the notification row
    facts: Mapping[str, str] = field(default_factory=dict)

    def render_text(self) -> str:
        """Plain text with the links appended (email body, Slack fallback text)."""
        lines = [self.text]
        lines.extend(f"{link.label}: {link.url}" for link in self.links)
        return "\n".join(lines)


@dataclass(frozen=True)
class DeliveryResult:
    channel: ChannelName
    destination: str
    # provider's answer, short: "slack 200 ok", "smtp 250 queued", "local sink"
    detail: str


class DeliveryError(Exception):
    """A delivery did not happen."""


class TransientDeliveryError(DeliveryError):
    """Not delivered; trying again later may work (5xx, 429, timeouts, connection errors)."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PermanentDeliveryError(DeliveryError):
    """Not delivered and never will be as configured (4xx: bad payload, revoked webhook...)."""


class Channel(Protocol):
    name: ChannelName

    async def send(self, message: OutboundMessage) -> DeliveryResult: ...
