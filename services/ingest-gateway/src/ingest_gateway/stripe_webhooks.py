"""Stripe webhooks: signature verification with the official library and mapping to catalog events.

Verification is `stripe.WebhookSignature.verify_header` (what `stripe.Webhook.construct_event`
calls) with the configured tolerance. The library raises one exception type for every failure;
the gateway tells a stale timestamp (400: the signature was right, the delivery is too old or a
replay) from a wrong or missing signature (401).

Mapped types (everything else is acknowledged and ignored, never an error, or Stripe would retry
for days):

- `charge.refund.updated` with refund status `failed`, and `refund.failed`
  -> stripe/charge.refund.failed
- `charge.dispute.created` -> stripe/charge.dispute.created
- `charge.refunded` -> stripe/charge.refunded
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shared_events import (
    EventModel,
    StripeChargeDisputeCreated,
    StripeChargeRefunded,
    StripeChargeRefundFailed,
)

from .bounds import bounded_key
from .http_body import GatewayHTTPError, schema_error

_STALE_PREFIX = "Timestamp outside the tolerance zone"

MAX_EVENT_ID = 200  # outbox.event_id

MAPPED_TYPES = frozenset(
    {"charge.refund.updated", "refund.failed", "charge.dispute.created", "charge.refunded"}
)


def verify_signature(body: bytes, header: str | None, secret: str, tolerance: int) -> None:
    """401 for a missing/wrong signature, 400 for a stale timestamp or undecodable body."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise GatewayHTTPError(400, "body is not valid UTF-8") from None
    if not header:
        raise GatewayHTTPError(401, "missing Stripe-Signature header")
    if not header.isascii():
        # The library compares with hmac.compare_digest, which raises TypeError on non-ASCII str.
        raise GatewayHTTPError(401, "invalid Stripe-Signature: not ASCII")
    try:
        stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        message = str(exc.user_message or exc)
        if message.startswith(_STALE_PREFIX):
            raise GatewayHTTPError(
                400, f"stale Stripe-Signature timestamp (tolerance {tolerance} s)"
            ) from None
        raise GatewayHTTPError(401, f"invalid Stripe-Signature: {message}") from None


class StripeObject(BaseModel):
    """The fields of `data.object` the gateway reads (refund, dispute or charge)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    object: str = ""
    amount: int | None = Field(default=None, ge=0)
    amount_refunded: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    charge: str | dict[str, Any] | None = None
    status: str | None = None
    failure_reason: str | None = None
    reason: str | None = None
    customer: str | dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def charge_id(self) -> str | None:
        if isinstance(self.charge, str):
            return self.charge or None
        if isinstance(self.charge, dict):
            value = self.charge.get("id")
            return value if isinstance(value, str) and value else None
        return None

    def stripe_customer_id(self) -> str | None:
        if isinstance(self.customer, str):
            return self.customer or None
        if isinstance(self.customer, dict):
            value = self.customer.get("id")
            return value if isinstance(value, str) and value else None
        return None


class StripeEventData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    object: dict[str, Any]


class StripeEventEnvelope(BaseModel):
    """A Stripe Event (`object: "event"`)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255, pattern=r"^evt_")
    type: str = Field(min_length=1, max_length=100)
    created: int | None = None
    livemode: bool = False
    data: StripeEventData


@dataclass(frozen=True, slots=True)
class StripeDelivery:
    """A verified, parsed Stripe event and what it names."""

    event_id: str
    event_type: str
    obj: StripeObject | None  # None for types the gateway ignores
    summary: dict[str, Any]  # what inbound_webhooks keeps (ids and amounts, no PII)

    @property
    def mapped(self) -> bool:
        return self.obj is not None

    @property
    def key(self) -> str:
        """The delivery's dedup key and outbox event id: Stripe's id, or its fixed-length key
        when longer than the outbox's event id column (Stripe allows 255 characters)."""
        return bounded_key(self.event_id, MAX_EVENT_ID)


def parse_event(data: dict[str, Any]) -> StripeDelivery:
    """Validate the envelope (and, for mapped types, `data.object`); 422 names the field."""
    try:
        envelope = StripeEventEnvelope.model_validate(data)
    except ValidationError as error:
        raise schema_error("Stripe event", error) from None
    if envelope.type not in MAPPED_TYPES:
        return StripeDelivery(envelope.id, envelope.type, None, {"type": envelope.type})
    try:
        obj = StripeObject.model_validate(envelope.data.object)
    except ValidationError as error:
        raise schema_error("Stripe event", error, prefix="data.object.") from None
    missing = _missing_fields(envelope.type, obj)
    if missing:
        raise GatewayHTTPError(
            422,
            "invalid Stripe event: "
            + "; ".join(f"data.object.{field}: Field required" for field in missing),
        )
    summary = {
        "type": envelope.type,
        "object_id": obj.id,
        "charge_id": obj.charge_id() if obj.object != "charge" else obj.id,
        "status": obj.status,
        "amount": obj.amount,
        "currency": obj.currency,
    }
    return StripeDelivery(envelope.id, envelope.type, obj, summary)


def _missing_fields(event_type: str, obj: StripeObject) -> list[str]:
    needed: list[tuple[str, object]]
    if event_type == "charge.refunded":
        needed = [("amount_refunded", obj.amount_refunded), ("currency", obj.currency)]
    else:
        needed = [("charge", obj.charge_id()), ("amount", obj.amount), ("currency", obj.currency)]
    return [name for name, value in needed if value is None]


def charge_id_of(delivery: StripeDelivery) -> str | None:
    if delivery.obj is None:
        return None
    if delivery.event_type == "charge.refunded":
        return delivery.obj.id
    return delivery.obj.charge_id()


def to_catalog_event(delivery: StripeDelivery, customer_id: str | None) -> EventModel | None:
    """The typed event for a mapped delivery, or None when this delivery publishes nothing
    (an ignored type, or a refund update that is not a failure)."""
    obj = delivery.obj
    if obj is None:
        return None
    currency = (obj.currency or "").lower()
    charge_id = charge_id_of(delivery) or ""
    if delivery.event_type in ("charge.refund.updated", "refund.failed"):
        if delivery.event_type == "charge.refund.updated" and obj.status != "failed":
            return None
        return StripeChargeRefundFailed(
            stripe_event_id=delivery.event_id,
            charge_id=charge_id,
            refund_id=obj.id,
            customer_id=customer_id,
            amount_cents=obj.amount or 0,
            currency=currency,
            failure_reason=obj.failure_reason,
        )
    if delivery.event_type == "charge.dispute.created":
        return StripeChargeDisputeCreated(
            stripe_event_id=delivery.event_id,
            dispute_id=obj.id,
            charge_id=charge_id,
            customer_id=customer_id,
            amount_cents=obj.amount or 0,
            currency=currency,
            reason=obj.reason,
        )
    if delivery.event_type == "charge.refunded":
        return StripeChargeRefunded(
            stripe_event_id=delivery.event_id,
            charge_id=charge_id,
            customer_id=customer_id,
            amount_refunded_cents=obj.amount_refunded or 0,
            currency=currency,
        )
    return None
