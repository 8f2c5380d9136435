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
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses, parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .bounds import bounded_key, truncate
from .http_body import GatewayHTTPError, schema_error

# RFC 5321 caps an address at 254 characters in practice; the column holds 320.
_MAX_ADDRESS = 320
# Column sizes (messages / tickets / customers) and the outbox event id (`postmark-<key>`, 200).
_MAX_HEADER_KEY = 300  # thread_key, in_reply_to
_MAX_SUBJECT = 300
_MAX_NAME = 200
MAX_MESSAGE_KEY = 200 - len("postmark-")
# RFC 5322 caps a line at 998 characters: no real MessageID is longer.
_MAX_MESSAGE_ID = 998
# A Date header outside [1970, arrival + 1 day] is a broken clock or a forgery: arrival time wins.
_EARLIEST_DATE = datetime(1970, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(days=1)


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

    # The sender is FromFull or, failing that, From: say so in the published schema too.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"anyOf": [{"required": ["FromFull"]}, {"required": ["From"]}]},
    )

    MessageID: str = Field(min_length=1, max_length=_MAX_MESSAGE_ID)
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

    provider_message_id: str  # MessageID, or its fixed-length key when longer (bounds.py)
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
    """The Date header in UTC; the arrival time when it is missing, unreadable or absurd."""
    now = datetime.now(UTC)
    if not value:
        return now
    try:
        parsed = parsedate_to_datetime(_COLON_OFFSET.sub(r"\1\2", value.strip()))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)  # OverflowError near year 1 or 9999
    except (TypeError, ValueError, IndexError, OverflowError):
        return now
    if not _EARLIEST_DATE <= parsed <= now + _CLOCK_SKEW:
        return now
    return parsed


def _message_ids(value: str | None) -> list[str]:
    """`<a@x> <b@y>` -> ["<a@x>", "<b@y>"] (References / In-Reply-To)."""
    if not value:
        return []
    return [part if part.startswith("<") else f"<{part}>" for part in value.split() if part]


def _header_key(value: str) -> str:
    """A Message-ID as stored: itself, or a fixed-length key when longer than the column, so
    two long ids that share a prefix never land on one thread."""
    return bounded_key(value, _MAX_HEADER_KEY)


def _thread_key(payload: PostmarkInbound) -> tuple[str, str | None]:
    references = _message_ids(payload.header("References"))
    reply_to = _message_ids(payload.header("In-Reply-To"))
    in_reply_to = _header_key(reply_to[0]) if reply_to else None
    if references:
        return _header_key(references[0]), in_reply_to
    if in_reply_to:
        return in_reply_to, in_reply_to
    own = _message_ids(payload.header("Message-ID"))
    return _header_key(own[0] if own else f"postmark:{payload.MessageID}"), None


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
    message_id = payload.MessageID.strip()
    if not message_id:
        raise schema_error_missing("MessageID", "must not be blank")
    thread_key, in_reply_to = _thread_key(payload)
    text = payload.TextBody or payload.StrippedTextReply
    to_address = payload.ToFull[0].Email if payload.ToFull else payload.OriginalRecipient
    return InboundEmail(
        provider_message_id=bounded_key(message_id, MAX_MESSAGE_KEY),
        sender_email=sender_email,
        sender_name=truncate(sender_name or sender_email.split("@", 1)[0], _MAX_NAME),
        to_address=truncate(to_address or payload.To, _MAX_ADDRESS),
        subject=truncate(payload.Subject, _MAX_SUBJECT),
        body_text=text,
        received_at=_received_at(payload.Date),
        thread_key=thread_key,
        in_reply_to=in_reply_to,
    )


def schema_error_missing(field: str, message: str) -> GatewayHTTPError:
    return GatewayHTTPError(422, f"invalid Postmark inbound payload: {field}: {message}")
