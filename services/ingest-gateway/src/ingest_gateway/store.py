"""System-of-record writes of the gateway. Every function runs inside the caller's transaction.

Every write has a natural key and is an INSERT ... ON CONFLICT DO NOTHING (or an upsert), so a
re-delivered webhook, two concurrent deliveries of the same one, or a retry after a crash never
writes a second row:

- inbound_webhooks: unique (source, external_id) -> the first delivery wins, the others are
  recognised as duplicates before anything else is written;
- customers: unique email -> race-safe "find or create by sender address";
- tickets: unique thread_key -> one ticket per conversation;
- messages: unique provider_message_id;
- outbox: unique event_id (the Inngest idempotency id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from shared_events import EventModel
from sqlalchemy import Insert, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

_WEBHOOKS: Table = InboundWebhook.__table__  # type: ignore[assignment]
_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxEvent.__table__  # type: ignore[assignment]
_APPROVALS: Table = Approval.__table__  # type: ignore[assignment]

# Stripe deliveries name the customer they concern; the column is used when the schema has it,
# and the id is always kept in the payload as well.
_WEBHOOK_HAS_CUSTOMER = "customer_id" in _WEBHOOKS.c


def utcnow() -> datetime:
    return datetime.now(UTC)


def _insert(session: AsyncSession, table: Table) -> Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect}")


async def insert_ignore(
    session: AsyncSession, table: Table, values: dict[str, Any], conflict: list[str]
) -> bool:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING; True when a row was written."""
    stmt = _insert(session, table).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=conflict)  # type: ignore[attr-defined]
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_delivery(
    session: AsyncSession,
    *,
    source: str,
    external_id: str,
    event_type: str,
    payload: dict[str, Any],
    customer_id: str | None = None,
    status: str = "processed",
) -> str | None:
    """Record a delivery; its id, or None when (source, external_id) was already recorded."""
    webhook_id = new_id("whk")
    now = utcnow()
    values: dict[str, Any] = {
        "id": webhook_id,
        "source": source,
        "external_id": external_id,
        "event_type": event_type,
        "payload": payload,
        "signature_verified": True,
        "status": status,
        "received_at": now,
        "processed_at": now,
    }
    if _WEBHOOK_HAS_CUSTOMER:
        values["customer_id"] = customer_id
    inserted = await insert_ignore(session, _WEBHOOKS, values, ["source", "external_id"])
    return webhook_id if inserted else None


@dataclass(frozen=True, slots=True)
class CustomerRef:
    id: str
    tier: str


async def find_or_create_customer(session: AsyncSession, email: str, name: str) -> CustomerRef:
    """The customer with this address; a new standard customer when unknown (race-safe)."""
    await insert_ignore(
        session,
        _CUSTOMERS,
        {"id": new_id("cust"), "email": email, "name": name or email, "tier": "standard"},
        ["email"],
    )
    row = (
        await session.execute(select(Customer.id, Customer.tier).where(Customer.email == email))
    ).one()
    return CustomerRef(id=row.id, tier=row.tier)


async def find_or_create_ticket(
    session: AsyncSession, *, customer_id: str, thread_key: str, subject: str
) -> str:
    """The ticket of this conversation (by thread key); opened when it is the first message."""
    await insert_ignore(
        session,
        _TICKETS,
        {
            "id": new_id("tkt"),
            "customer_id": customer_id,
            "subject": subject,
            "status": "open",
            "channel": "email",
            "thread_key": thread_key,
        },
        ["thread_key"],
    )
    ticket_id: str = (
        await session.execute(select(Ticket.id).where(Ticket.thread_key == thread_key))
    ).scalar_one()
    return ticket_id


async def insert_inbound_message(
    session: AsyncSession,
    *,
    message_id: str,
    ticket_id: str,
    customer_id: str,
    provider_message_id: str,
    in_reply_to: str | None,
    from_address: str,
    to_address: str,
    subject: str,
    body_text: str,
    received_at: datetime,
) -> bool:
    return await insert_ignore(
        session,
        _MESSAGES,
        {
            "id": message_id,
            "ticket_id": ticket_id,
            "customer_id": customer_id,
            "direction": "inbound",
            "channel": "email",
            "provider": "postmark",
            "provider_message_id": provider_message_id,
            "in_reply_to": in_reply_to,
            "from_address": from_address,
            "to_address": to_address,
            "subject": subject,
            "body_text": body_text,
            "extra": {},
            "received_at": received_at,
        },
        ["provider_message_id"],
    )


async def customer_for_stripe(
    session: AsyncSession,
    *,
    charge_id: str | None,
    metadata_customer_id: str | None,
    stripe_customer_id: str | None,
) -> str | None:
    """Who a Stripe object concerns: the order's customer (orders.stripe_charge_id), then
    `metadata.customer_id` when it names a known customer, then customers.stripe_customer_id."""
    if charge_id:
        found = (
            await session.execute(
                select(Order.customer_id).where(Order.stripe_charge_id == charge_id)
            )
        ).scalar_one_or_none()
        if found:
            return str(found)
    if metadata_customer_id:
        found = (
            await session.execute(select(Customer.id).where(Customer.id == metadata_customer_id))
        ).scalar_one_or_none()
        if found:
            return str(found)
    if stripe_customer_id:
        found = (
            await session.execute(
                select(Customer.id).where(Customer.stripe_customer_id == stripe_customer_id)
            )
        ).scalar_one_or_none()
        if found:
            return str(found)
    return None


async def add_outbox(
    session: AsyncSession,
    *,
    event_id: str,
    event: EventModel,
    source_webhook_id: str | None = None,
) -> bool:
    """Queue `event` for publishing; False when this event id is already queued."""
    now = utcnow()
    return await insert_ignore(
        session,
        _OUTBOX,
        {
            "id": new_id("obx"),
            "event_id": event_id,
            "event_name": event.name,
            "payload": event.to_data(),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "source_webhook_id": source_webhook_id,
            "created_at": now,
            "updated_at": now,
        },
        ["event_id"],
    )


async def insert_approval(
    session: AsyncSession,
    *,
    approval_id: str,
    kind: str,
    request_id: str,
    decision: str,
    reviewer: str,
    edited_text: str | None,
    token_id: str,
    decided_at: datetime,
) -> None:
    """Plain INSERT: a second decision (kind, request_id) or a reused token id raises
    IntegrityError, which the caller turns into 409."""
    await session.execute(
        _APPROVALS.insert().values(
            id=approval_id,
            kind=kind,
            request_id=request_id,
            decision=decision,
            reviewer=reviewer,
            edited_text=edited_text,
            token_id=token_id,
            decided_at=decided_at,
            created_at=decided_at,
        )
    )


async def find_approval(session: AsyncSession, *, kind: str, request_id: str) -> Approval | None:
    return (
        await session.execute(
            select(Approval).where(Approval.kind == kind, Approval.request_id == request_id)
        )
    ).scalar_one_or_none()


async def find_ticket(session: AsyncSession, ticket_id: str) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


async def mark_ticket_resolved(
    session: AsyncSession, *, ticket_id: str, resolved_by: str, at: datetime
) -> None:
    await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status.not_in(("resolved", "closed")))
        .values(status="resolved", resolved_by=resolved_by, resolved_at=at, updated_at=at)
    )
