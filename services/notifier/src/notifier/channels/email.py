"""Email over SMTP with aiosmtplib. Recipients are configured per destination.

SMTP reply codes: 4yz is a transient failure (try later), 5yz permanent; connection problems are
transient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from .base import (
    ChannelName,
    DeliveryResult,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    start_tls: bool = False
    use_tls: bool = False
    timeout_seconds: float = 10.0


def build_email(message: OutboundMessage, sender: str, recipients: Sequence[str]) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Subject"] = message.subject
    # Lets a human (or a mail filter) spot a duplicate; delivery dedup happens before sending.
    email["X-Nerve-Dedup-Key"] = message.dedup_key
    email.set_content(message.render_text())
    return email


class SmtpEmailChannel:
    name: ChannelName = "email"

    def __init__(self, config: SmtpConfig, recipients: Mapping[str, Sequence[str]]) -> None:
        self._config = config
        self._recipients = {key: list(value) for key, value in recipients.items() if value}

    def handles(self, destination: str) -> bool:
        return destination in self._recipients

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        recipients = self._recipients.get(message.destination)
        if not recipients:
            raise PermanentDeliveryError(
                f"no email recipients configured for destination {message.destination!r}"
            )
        config = self._config
        email = build_email(message, config.sender, recipients)
        try:
            errors, response = await aiosmtplib.send(
                email,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                start_tls=config.start_tls,
                use_tls=config.use_tls,
                timeout=config.timeout_seconds,
            )
        except aiosmtplib.SMTPResponseException as error:
            text = f"SMTP {error.code} {error.message}"[:200]
            if 400 <= error.code < 500:
                raise TransientDeliveryError(text) from error
            raise PermanentDeliveryError(text) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientDeliveryError(
                f"SMTP server unreachable: {type(error).__name__}"
            ) from error
        if errors:
            refused = ", ".join(f"{code}" for code, _ in errors.values())
            raise PermanentDeliveryError(f"SMTP refused {len(errors)} recipient(s): {refused}")
        return DeliveryResult(
            channel="email", destination=message.destination, detail=f"smtp {response[:100]}"
        )
