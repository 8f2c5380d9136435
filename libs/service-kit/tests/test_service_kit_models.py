"""System-of-record behaviour both backends must share: UTC timestamps, natural unique keys,
JSON columns, and the seed data the flows rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import (
    Approval,
    Customer,
    InboundWebhook,
    Message,
    Order,
    OutboxEvent,
    Ticket,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError


async def test_seed_customers_and_orders_are_there(database: Database) -> None:
    async with database.session() as session:
        ada = await session.get(Customer, "cust_001")
        orders = (await session.scalars(select(Order).where(Order.customer_id == "cust_001"))).all()
    assert ada is not None and (ada.email, ada.tier) == ("ada@example.com", "enterprise")
    assert {o.stripe_charge_id for o in orders} >= {"ch_seed_1001"}
    assert all(o.currency == "usd" and 1999 <= o.amount_cents <= 25000 for o in orders)


async def test_timestamps_round_trip_as_aware_utc(database: Database) -> None:
    paris = timezone(timedelta(hours=2))
    received = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=paris)
    message_id = new_id("msg")
    async with database.transaction() as session:
        session.add(
            Message(
                id=message_id,
                customer_id="cust_002",
                direction="inbound",
                provider_message_id=f"pm-{message_id}",
                received_at=received,
            )
        )
    async with database.session() as session:
        stored = await session.get(Message, message_id)
    assert stored is not None and stored.received_at is not None
    assert stored.received_at == received  # same instant ...
    assert stored.received_at.utcoffset() == timedelta(0)  # ... expressed in UTC
    assert stored.received_at.hour == 12
    assert stored.created_at.tzinfo is not None
    assert abs(stored.created_at - datetime.now(UTC)) < timedelta(minutes=5)


async def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with database.transaction() as session:
            session.add(
                Ticket(id=new_id("tkt"), customer_id="cust_003", resolved_at=datetime(2026, 1, 1))
            )


async def test_provider_message_id_is_unique(database: Database) -> None:
    provider_id = f"pm-{new_id('x')}"
    async with database.transaction() as session:
        session.add(Message(id=new_id("msg"), direction="inbound", provider_message_id=provider_id))
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(
                Message(id=new_id("msg"), direction="inbound", provider_message_id=provider_id)
            )


async def test_one_decision_per_request_and_tokens_are_single_use(database: Database) -> None:
    request_id = new_id("rfd")
    token = new_id("tok")
    async with database.transaction() as session:
        session.add(
            Approval(
                id=new_id("apr"),
                kind="refund",
                request_id=request_id,
                decision="approve",
                reviewer="rev_alice",
                token_id=token,
            )
        )
    # A second decision on the same request (even with a new token) is refused.
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(
                Approval(
                    id=new_id("apr"),
                    kind="refund",
                    request_id=request_id,
                    decision="reject",
                    reviewer="rev_bob",
                    token_id=new_id("tok"),
                )
            )
    # A replayed token is refused even for another request.
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(
                Approval(
                    id=new_id("apr"),
                    kind="escalation",
                    request_id=new_id("esc"),
                    decision="approve",
                    reviewer="rev_alice",
                    token_id=token,
                )
            )


async def test_closed_sets_are_checked_by_the_database(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(Message(id=new_id("msg"), direction="sideways"))


async def test_webhooks_are_unique_per_source_and_external_id(database: Database) -> None:
    external_id = new_id("evt")
    async with database.transaction() as session:
        session.add(InboundWebhook(id=new_id("whk"), source="stripe", external_id=external_id))
        # The same external id from another provider is a different delivery.
        session.add(InboundWebhook(id=new_id("whk"), source="postmark", external_id=external_id))
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(InboundWebhook(id=new_id("whk"), source="stripe", external_id=external_id))


async def test_json_payloads_round_trip(database: Database) -> None:
    event_id = new_id("evt")
    payload = {"message_id": "msg_1", "nested": {"tier": "pro", "n": [1, 2.5, None]}}
    async with database.transaction() as session:
        session.add(
            OutboxEvent(
                id=new_id("obx"),
                event_id=event_id,
                event_name="customer/email.received",
                payload=payload,
            )
        )
    async with database.session() as session:
        stored = await session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == event_id))
    assert stored is not None
    assert stored.payload == payload
    assert (stored.status, stored.attempts, stored.published_at) == ("pending", 0, None)
