"""Accepting Stripe and generic deliveries against the real system of record (SQLite and
Postgres): the customer a Stripe object concerns, ignored types, one delivery stored once."""

from __future__ import annotations

import uuid
from typing import Any

from gateway_helpers import count_rows
from ingest_gateway.ingest import accept_generic, accept_stripe
from ingest_gateway.stripe_webhooks import parse_event
from service_kit.db import Database
from service_kit.models import InboundWebhook, OutboxEvent
from shared_events import TicketResolved
from sqlalchemy import select


def _stripe(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": event_type,
        "data": {"object": obj},
    }


async def test_dispute_is_stored_with_the_order_customer(database: Database) -> None:
    payload = _stripe(
        "charge.dispute.created",
        {
            "id": "dp_1",
            "object": "dispute",
            "amount": 1999,
            "charge": "ch_seed_1001",
            "currency": "usd",
            "reason": "fraudulent",
        },
    )
    result = await accept_stripe(database, parse_event(payload))
    again = await accept_stripe(database, parse_event(payload))
    assert (result.status, again.status) == ("accepted", "duplicate")
    async with database.session() as session:
        row = (
            await session.execute(
                select(InboundWebhook).where(
                    InboundWebhook.source == "stripe", InboundWebhook.external_id == payload["id"]
                )
            )
        ).scalar_one()
        outbox = (
            await session.execute(select(OutboxEvent).where(OutboxEvent.event_id == payload["id"]))
        ).scalar_one()
    assert row.event_type == "stripe/charge.dispute.created"
    assert row.payload["customer_id"] == "cust_001"
    assert outbox.payload["customer_id"] == "cust_001"
    assert outbox.payload["dispute_id"] == "dp_1"


async def test_customer_from_metadata_when_no_order_matches(database: Database) -> None:
    payload = _stripe(
        "charge.refunded",
        {
            "id": f"ch_{uuid.uuid4().hex[:10]}",
            "object": "charge",
            "amount_refunded": 500,
            "currency": "usd",
            "metadata": {"customer_id": "cust_003"},
        },
    )
    await accept_stripe(database, parse_event(payload))
    async with database.session() as session:
        outbox = (
            await session.execute(select(OutboxEvent).where(OutboxEvent.event_id == payload["id"]))
        ).scalar_one()
    assert outbox.event_name == "stripe/charge.refunded"
    assert outbox.payload["customer_id"] == "cust_003"


async def test_unknown_stripe_type_stores_nothing(database: Database) -> None:
    payload = _stripe("customer.created", {"id": "cus_1"})
    result = await accept_stripe(database, parse_event(payload))
    assert result.status == "ignored"
    assert (
        await count_rows(database, InboundWebhook, InboundWebhook.external_id == payload["id"]) == 0
    )
    assert await count_rows(database, OutboxEvent, OutboxEvent.event_id == payload["id"]) == 0


async def test_generic_delivery_once(database: Database) -> None:
    ticket = f"tkt_{uuid.uuid4().hex[:8]}"
    event = TicketResolved(ticket_id=ticket, customer_id="cust_002", resolved_by="helpdesk")
    first = await accept_generic(database, source="helpdesk", external_id=ticket, event=event)
    second = await accept_generic(database, source="helpdesk", external_id=ticket, event=event)
    assert (first.status, second.status) == ("accepted", "duplicate")
    assert (
        await count_rows(database, OutboxEvent, OutboxEvent.event_id == f"helpdesk-{ticket}") == 1
    )
