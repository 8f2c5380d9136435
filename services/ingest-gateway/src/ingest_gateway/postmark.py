"""Postmark inbound email: the documented JSON (field names as Postmark sends them) and the
parts the gateway keeps.

https://postmarkapp.com/developer/webhooks/inbound-webhook - Postmark authenticates inbound
webhooks with HTTP basic auth credentials embedded in the webhook URL
(`https://user:pass@host/webhooks/postmark/inbound`), so the gateway checks the Authorization
header in constant time (see `auth.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .http_body import GatewayHTTPError, schema_error

# RFC 5321 caps an address at 254 characters in practice; the column holds 320.
_MAX_ADDRESS = 320


class PostmarkAddress(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Email: str = Field(min_length=3, max_length=_MAX_ADDRESS, pattern=r"^[^@\s]+@[^@\s]+$")
    Name: str = ""
    MailboxHash: str = ""


class PostmarkHeader(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Name: str
    Value: str = ""


class PostmarkInbound(BaseModel):
    """The inbound webhook body. Unknown fields (Attachments, Cc, Tag ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    MessageID: str = Field(min_length=1, max_length=200)
    From: str = ""
    FromName: str = ""
    FromFull: PostmarkAddress | None = None
    To: str = ""
    ToFull: list[PostmarkAddress] = Field(default_factory=list)
    OriginalRecipient: str = ""
    ReplyTo: str = ""
    Subject: str = ""
    Date: str = ""
    MailboxHash: str = ""
    TextBody: str = ""
    HtmlBody: str = ""
    StrippedTextReply: str = ""
    MessageStream: str = ""
    Headers: list[PostmarkHeader] = Field(default_factory=list)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for item in self.Headers:
            if item.Name.lower() == wanted:
                return item.Value
        return None


@dataclass(frozen=True, slots=True)
class InboundEmail:
    """What the gateway stores for one inbound email."""

    provider_message_id: str
    sender_email: str  # lower-cased
    sender_name: str
    to_address: str
    subject: str
    body_text: str
    received_at: datetime
    thread_key: str  # the conversation's root Message-ID, so replies land on one ticket
    in_reply_to: str | None


def _sender(payload: PostmarkInbound) -> tuple[str, str]:
    if payload.FromFull is not None:
        return payload.FromFull.Email.lower(), payload.FromFull.Name or payload.FromName
    parsed = [addr for _, addr in getaddresses([payload.From]) if addr]
    if not parsed:
        raise ValueError("From")
    address = parsed[0]
    try:
        PostmarkAddress(Email=address)
    except ValidationError:
        raise ValueError("From") from None
    return address.lower(), payload.FromName


# Postmark writes offsets as "-04:00"; RFC 2822 (and the email package) expects "-0400".
_COLON_OFFSET = re.compile(r"([+-]\d{2}):(\d{2})\s*$")


def _received_at(value: str) -> datetime:
    if value:
        try:
            parsed = parsedate_to_datetime(_COLON_OFFSET.sub(r"\1\2", value.strip()))
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    return datetime.now(UTC)


def _message_ids(value: str | None) -> list[str]:
    """`<a@x> <b@y>` -> ["<a@x>", "<b@y>"] (References / In-Reply-To)."""
    if not value:
        return []
    return [part if part.startswith("<") else f"<{part}>" for part in value.split() if part]


def _thread_key(payload: PostmarkInbound) -> tuple[str, str | None]:
    references = _message_ids(payload.header("References"))
    reply_to = _message_ids(payload.header("In-Reply-To"))
    in_reply_to = reply_to[0] if reply_to else None
    if references:
        return references[0][:300], in_reply_to
    if in_reply_to:
        return in_reply_to[:300], in_reply_to
    own = _message_ids(payload.header("Message-ID"))
    return (own[0] if own else f"postmark:{payload.MessageID}")[:300], None


def parse_inbound(data: dict[str, object]) -> InboundEmail:
    """Validate Postmark's JSON; 422 naming the field when it does not fit."""
    try:
        payload = PostmarkInbound.model_validate(data)
    except ValidationError as error:
        raise schema_error("Postmark inbound payload", error) from None
    if payload.FromFull is None and not payload.From:
        raise schema_error_missing("From", "FromFull or From is required")
    try:
        sender_email, sender_name = _sender(payload)
    except ValueError:
        raise schema_error_missing("From", "not an email address") from None
    thread_key, in_reply_to = _thread_key(payload)
    text = payload.TextBody or payload.StrippedTextReply
    to_address = payload.ToFull[0].Email if payload.ToFull else payload.OriginalRecipient
    return InboundEmail(
        provider_message_id=payload.MessageID.strip(),
        sender_email=sender_email,
        sender_name=(sender_name or sender_email.split("@", 1)[0])[:200],
        to_address=(to_address or payload.To)[:_MAX_ADDRESS],
        subject=payload.Subject[:300],
        body_text=text,
        received_at=_received_at(payload.Date),
        thread_key=thread_key,
        in_reply_to=in_reply_to,
    )


def schema_error_missing(field: str, message: str) -> GatewayHTTPError:
    return GatewayHTTPError(422, f"invalid Postmark inbound payload: {field}: {message}")
