"""Accepting Postmark deliveries against the real system of record (SQLite and Postgres):
customers, tickets and threads, messages, one outbox row each. Stripe and generic deliveries:
test_gateway_ingest_stripe.py; reviewer decisions: test_gateway_ingest_decisions.py."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from gateway_helpers import count_rows
from ingest_gateway.ingest import accept_postmark, postmark_event_id
from ingest_gateway.postgres_fast_path import accept_postmark_fast
from ingest_gateway.postmark import parse_inbound
from service_kit.db import Database
from service_kit.models import Customer, Message, OutboxEvent, Ticket
from shared_events import CustomerEmailReceived
from sqlalchemy import func, select


def _postmark(message_id: str, sender: str, **extra: Any) -> dict[str, Any]:
    return {
        "MessageID": message_id,
        "From": sender,
        "FromFull": {"Email": sender, "Name": "Someone", "MailboxHash": ""},
        "Subject": "Where is my refund?",
        "TextBody": "I asked for a refund last week.",
        "Date": "Mon, 2 Nov 2026 10:00:00 +0000",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@mail.example.com>"}],
        **extra,
    }


async def test_postmark_email_is_stored_once_with_one_outbox_row(database: Database) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    email = parse_inbound(_postmark(message_id, "ada@example.com"))
    results = [await accept_postmark(database, email) for _ in range(3)]
    assert [r.status for r in results] == ["accepted", "duplicate", "duplicate"]
    assert await count_rows(database, Message, Message.provider_message_id == message_id) == 1
    async with database.session() as session:
        message = (
            await session.execute(select(Message).where(Message.provider_message_id == message_id))
        ).scalar_one()
        outbox = (
            await session.execute(
                select(OutboxEvent).where(OutboxEvent.event_id == f"postmark-{message_id}")
            )
        ).scalar_one()
    assert message.customer_id == "cust_001"  # the seeded customer with that address
    assert message.body_text == "I asked for a refund last week."
    assert message.direction == "inbound"
    assert outbox.status == "pending"
    assert outbox.event_name == "customer/email.received"
    # Claim check: the event names the message, never carries its text or the address.
    assert outbox.payload["message_id"] == message.id
    assert outbox.payload["customer_tier"] == "enterprise"
    # The stored payload is exactly the catalog model's JSON (whichever path built it).
    event = CustomerEmailReceived.from_data(outbox.payload)
    assert event.to_data() == outbox.payload
    assert (event.ticket_id, event.customer_id) == (message.ticket_id, "cust_001")
    assert "I asked" not in str(outbox.payload) and "ada@" not in str(outbox.payload)


async def test_unknown_sender_becomes_a_standard_customer(database: Database) -> None:
    sender = f"new-{uuid.uuid4().hex[:8]}@Example.org"
    email = parse_inbound(_postmark(f"pm-{uuid.uuid4()}", sender))
    result = await accept_postmark(database, email)
    assert result.status == "accepted"
    async with database.session() as session:
        customer = (
            await session.execute(select(Customer).where(Customer.email == sender.lower()))
        ).scalar_one()
    assert customer.tier == "standard"
    assert customer.id.startswith("cust_")


async def test_concurrent_first_emails_from_one_new_sender_make_one_customer(
    database: Database,
) -> None:
    sender = f"race-{uuid.uuid4().hex[:8]}@example.net"
    emails = [parse_inbound(_postmark(f"pm-{uuid.uuid4()}", sender)) for _ in range(8)]
    results = await asyncio.gather(*(accept_postmark(database, e) for e in emails))
    assert all(r.status == "accepted" for r in results)
    assert await count_rows(database, Customer, Customer.email == sender) == 1
    assert await count_rows(database, Message, Message.from_address == sender) == 8


async def test_concurrent_duplicate_deliveries_store_one_message(database: Database) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    email = parse_inbound(_postmark(message_id, "grace@example.com"))
    results = await asyncio.gather(*(accept_postmark(database, email) for _ in range(5)))
    assert sorted(r.status for r in results) == ["accepted"] + ["duplicate"] * 4
    assert await count_rows(database, Message, Message.provider_message_id == message_id) == 1
    assert (
        await count_rows(database, OutboxEvent, OutboxEvent.event_id == f"postmark-{message_id}")
        == 1
    )


async def test_a_reply_lands_on_the_same_ticket(database: Database) -> None:
    first_id = f"pm-{uuid.uuid4()}"
    first = parse_inbound(_postmark(first_id, "linus@example.com"))
    reply_payload = _postmark(f"pm-{uuid.uuid4()}", "linus@example.com")
    reply_payload["Headers"] = [
        {"Name": "In-Reply-To", "Value": "<reply-from-us@nerve>"},
        {"Name": "References", "Value": f"<{first_id}@mail.example.com> <reply-from-us@nerve>"},
    ]
    await accept_postmark(database, first)
    await accept_postmark(database, parse_inbound(reply_payload))
    async with database.session() as session:
        tickets = (
            (
                await session.execute(
                    select(Message.ticket_id).where(Message.from_address == "linus@example.com")
                )
            )
            .scalars()
            .all()
        )
        thread = await session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.thread_key == f"<{first_id}@mail.example.com>")
        )
    assert thread == 1
    assert len(set(tickets[-2:])) == 1


async def _ticket_of(db: Database, provider_message_id: str) -> Ticket:
    async with db.session() as session:
        message = (
            await session.execute(
                select(Message).where(Message.provider_message_id == provider_message_id)
            )
        ).scalar_one()
        ticket = await session.get(Ticket, message.ticket_id)
    assert ticket is not None and ticket.customer_id == message.customer_id
    return ticket


@pytest.mark.parametrize("forger_known", [True, False], ids=["known-forger", "new-forger"])
async def test_a_forged_reply_to_another_customers_thread_opens_the_senders_own_ticket(
    database: Database, forger_known: bool
) -> None:
    """References / In-Reply-To naming someone else's thread: the message lands on a new ticket
    of its sender, and the victim's ticket is untouched. A known forger goes through the
    Postgres fast path (on Postgres), a new one through the general path (both databases)."""
    victim_id = f"pm-{uuid.uuid4()}"
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    forger = f"forger-{uuid.uuid4().hex[:8]}@example.net"
    await accept_postmark(database, parse_inbound(_postmark(victim_id, victim)))
    if forger_known:
        await accept_postmark(database, parse_inbound(_postmark(f"pm-{uuid.uuid4()}", forger)))
    victim_ticket = await _ticket_of(database, victim_id)

    forged_id = f"pm-{uuid.uuid4()}"
    forged_payload = _postmark(forged_id, forger)
    forged_payload["Headers"] = [
        {"Name": "In-Reply-To", "Value": f"<{victim_id}@mail.example.com>"},
        {"Name": "References", "Value": f"<{victim_id}@mail.example.com>"},
    ]
    forged = parse_inbound(forged_payload)
    assert forged.thread_key == victim_ticket.thread_key  # the header names the victim's thread
    if forger_known and database.backend == "postgresql":
        fast = await accept_postmark_fast(database, forged, postmark_event_id(forged_id))
        assert fast.outcome == "accepted"  # the one-statement path took it, no fallback
    else:
        assert (await accept_postmark(database, forged)).status == "accepted"

    forged_ticket = await _ticket_of(database, forged_id)
    assert forged_ticket.id != victim_ticket.id
    async with database.session() as session:
        forger_customer = (
            await session.execute(select(Customer.id).where(Customer.email == forger))
        ).scalar_one()
        outbox = (
            await session.execute(
                select(OutboxEvent.payload).where(
                    OutboxEvent.event_id == postmark_event_id(forged_id)
                )
            )
        ).scalar_one()
    assert forged_ticket.customer_id == forger_customer
    # The event the agent runs on names the forger's own ticket and customer.
    assert (outbox["ticket_id"], outbox["customer_id"]) == (forged_ticket.id, forger_customer)
    # The victim's conversation is untouched: still their one message.
    assert await count_rows(database, Message, Message.ticket_id == victim_ticket.id) == 1
    assert (
        await count_rows(
            database, Message, Message.from_address == forger, Message.ticket_id == victim_ticket.id
        )
        == 0
    )

    # The forger replying again on "their" thread stays on their own ticket.
    again_id = f"pm-{uuid.uuid4()}"
    again = _postmark(again_id, forger)
    again["Headers"] = forged_payload["Headers"]
    await accept_postmark(database, parse_inbound(again))
    assert (await _ticket_of(database, again_id)).id == forged_ticket.id
    assert await count_rows(database, Message, Message.ticket_id == victim_ticket.id) == 1
