"""Accepting a delivery: the stored record and its outbox row, committed in one transaction.

"Accepted means durable": these functions return only after the commit, and the HTTP layer
answers 2xx only after they return. Publishing is the relay's job (outbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from service_kit.db import Database
from service_kit.ids import new_id
from shared_events import CustomerEmailReceived, EventModel

from . import store
from .bounds import bounded_key
from .postgres_fast_path import PostgresFastPath, accept_postmark_fast
from .postmark import InboundEmail
from .stripe_webhooks import MAX_EVENT_ID, StripeDelivery, charge_id_of, to_catalog_event

MAX_EXTERNAL_ID = 300  # inbound_webhooks.external_id

Outcome = Literal["accepted", "duplicate", "ignored"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the gateway answers: ids only."""

    status: Outcome
    event_ids: list[str] = field(default_factory=list)
    record_id: str | None = None  # messages.id / inbound_webhooks.id when stored

    @property
    def queued(self) -> bool:
        return bool(self.event_ids) and self.status == "accepted"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "event_ids": self.event_ids}
        if self.record_id:
            body["id"] = self.record_id
        return body


def postmark_event_id(provider_message_id: str) -> str:
    return f"postmark-{provider_message_id}"


async def accept_postmark(
    db: Database, email: InboundEmail, fast_path: PostgresFastPath | None = None
) -> Accepted:
    """Store the email (claim check) and queue customer/email.received, once per MessageID.
    `fast_path`: the app's Postgres fast path (see postgres_fast_path)."""
    if db.backend == "postgresql":
        event_id = postmark_event_id(email.provider_message_id)
        fast = await accept_postmark_fast(db, email, event_id, fast_path)
        if fast.outcome == "accepted":
            return Accepted("accepted", [event_id], fast.message_id)
        if fast.outcome == "duplicate":
            return Accepted("duplicate", [event_id])
        # fallback: an unknown sender (or a racing first email of a new thread)
    try:
        return await _accept_postmark(db, email)
    except _Duplicate:
        # Rolled back: a ticket opened for a duplicate's thread is not kept.
        return Accepted("duplicate", [postmark_event_id(email.provider_message_id)])


class _Duplicate(Exception):
    """This MessageID is already stored; abort the transaction."""


async def _accept_postmark(db: Database, email: InboundEmail) -> Accepted:
    event_id = postmark_event_id(email.provider_message_id)
    message_id = new_id("msg")
    async with db.engine.begin() as session:  # Core connection: the hot path
        # Customer and ticket first (idempotent, race-safe), then the message (unique MessageID)
        # and its outbox row.
        customer = await store.find_or_create_customer(
            session, email.sender_email, email.sender_name
        )
        ticket_id = await store.find_or_create_ticket(
            session,
            customer_id=customer.id,
            thread_key=email.thread_key,
            subject=email.subject,
        )
        # The message row is the stored delivery: its provider_message_id is unique, so a
        # re-delivered (or concurrently delivered) MessageID stops here.
        stored = await store.insert_inbound_message(
            session,
            message_id=message_id,
            ticket_id=ticket_id,
            customer_id=customer.id,
            provider_message_id=email.provider_message_id,
            in_reply_to=email.in_reply_to,
            from_address=email.sender_email,
            to_address=email.to_address,
            subject=email.subject,
            body_text=email.body_text,
            received_at=email.received_at,
        )
        if not stored:
            raise _Duplicate()
        event = CustomerEmailReceived(
            message_id=message_id,
            provider_message_id=email.provider_message_id,
            customer_id=customer.id,
            customer_tier=customer.tier,
            ticket_id=ticket_id,
            received_at=email.received_at,
        )
        await store.add_outbox(session, event_id=event_id, event=event)
    return Accepted("accepted", [event_id], message_id)


async def accept_stripe(db: Database, delivery: StripeDelivery) -> Accepted:
    """Store a mapped Stripe event in inbound_webhooks and queue its typed event (once per evt)."""
    if not delivery.mapped:
        return Accepted("ignored")
    obj = delivery.obj
    assert obj is not None
    metadata_customer = obj.metadata.get("customer_id")
    async with db.engine.begin() as session:  # Core connection: the hot path
        customer_id = await store.customer_for_stripe(
            session,
            charge_id=charge_id_of(delivery),
            metadata_customer_id=metadata_customer if isinstance(metadata_customer, str) else None,
            stripe_customer_id=obj.stripe_customer_id(),
        )
        event = to_catalog_event(delivery, customer_id)
        payload = {**delivery.summary, "customer_id": customer_id}
        webhook_id = await store.claim_delivery(
            session,
            source="stripe",
            external_id=delivery.key,
            event_type=event.name if event is not None else delivery.event_type,
            payload=payload,
            status="processed" if event is not None else "ignored",
        )
        if webhook_id is None:
            return Accepted("duplicate", [delivery.key] if event is not None else [])
        if event is None:
            return Accepted("ignored", [], webhook_id)
        await store.add_outbox(
            session, event_id=delivery.key, event=event, source_webhook_id=webhook_id
        )
    return Accepted("accepted", [delivery.key], webhook_id)


async def accept_generic(
    db: Database, *, source: str, external_id: str, event: EventModel
) -> Accepted:
    """Store a generic producer's delivery and queue its mapped event (once per external id).
    Ids too long for their columns are stored as fixed-length keys (`bounds.bounded_key`)."""
    event_id = bounded_key(f"{source}-{external_id}", MAX_EVENT_ID)
    async with db.engine.begin() as session:  # Core connection: the hot path
        webhook_id = await store.claim_delivery(
            session,
            source=f"generic:{source}"[:30],
            external_id=bounded_key(external_id, MAX_EXTERNAL_ID),
            event_type=event.name,
            payload=event.to_data(),
        )
        if webhook_id is None:
            return Accepted("duplicate", [event_id])
        await store.add_outbox(
            session, event_id=event_id, event=event, source_webhook_id=webhook_id
        )
    return Accepted("accepted", [event_id], webhook_id)
