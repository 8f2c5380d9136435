"""Delivery channels behind one interface (`Channel.send(message) -> DeliveryResult`)."""

from .base import (
    Channel,
    ChannelName,
    DeliveryError,
    DeliveryResult,
    Link,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from .email import SmtpConfig, SmtpEmailChannel
from .local import LocalSinkChannel
from .slack import SlackWebhookChannel, slack_payload

__all__ = [
    "Channel",
    "ChannelName",
    "DeliveryError",
    "DeliveryResult",
    "Link",
    "LocalSinkChannel",
    "OutboundMessage",
    "PermanentDeliveryError",
    "SlackWebhookChannel",
    "SmtpConfig",
    "SmtpEmailChannel",
    "TransientDeliveryError",
    "slack_payload",
]
