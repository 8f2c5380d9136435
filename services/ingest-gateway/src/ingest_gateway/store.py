"""System-of-record writes of the gateway. Every function runs inside the caller's transaction.

Every write has a natural key and is an INSERT ... ON CONFLICT DO NOTHING, so a re-delivered
webhook, two concurrent deliveries of the same one, or a retry after a crash never writes a second
row:

- customers: unique email -> race-safe "find or create by sender address";
- tickets: unique (customer_id, thread_key) -> one ticket per conversation of one customer; a
  References / In-Reply-To naming another customer's thread opens a ticket of the sender;
- messages: unique provider_message_id -> a Postmark MessageID is stored once;
- inbound_webhooks: unique (source, external_id) -> a Stripe / generic delivery is stored once;
- outbox: unique event_id (the Inngest idempotency id).

Reviewer decisions (approvals, resolving a ticket) are written by `decision_store.py`.

The statements are built once per dialect and executed with parameters: the webhook path runs
thousands of times a second, and building SQLAlchemy constructs per request costs more CPU than
executing them. Functions accept an `AsyncConnection` (the webhook hot path: Core only) or an
`AsyncSession`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service_kit.ids import new_id
from service_kit.models import Customer, InboundWebhook, Message, Order, OutboxEvent, Ticket
from shared_events import EventModel
from sqlalchemy import Insert, Select, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Conn = AsyncConnection | AsyncSession

_WEBHOOKS: Table = InboundWebhook.__table__  # type: ignore[assignment]
_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxEvent.__table__  # type: ignore[assignment]


class _Statements:
    """The gateway's INSERT ... ON CONFLICT DO NOTHING statements for one dialect."""

    def __init__(self, insert: Any) -> None:
        def ignore(table: Table, *conflict: str) -> Insert:
            stmt: Insert = insert(table).on_conflict_do_nothing(index_elements=list(conflict))
            return stmt

        self.customer = ignore(_CUSTOMERS, "email")
        self.ticket = ignore(_TICKETS, "customer_id", "thread_key").returning(_TICKETS.c.id)
        self.message = ignore(_MESSAGES, "provider_message_id")
        self.webhook = ignore(_WEBHOOKS, "source", "external_id")
        self.outbox = ignore(_OUTBOX, "event_id")


_STATEMENTS = {"postgresql": _Statements(postgresql.insert), "sqlite": _Statements(sqlite.insert)}

_CUSTOMER_BY_EMAIL = select(Customer.id, Customer.tier).where(Customer.email == bindparam("email"))
_TICKET_BY_THREAD: Select[Any] = select(Ticket.id).where(
    Ticket.customer_id == bindparam("customer_id"), Ticket.thread_key == bindparam("key")
)
_CUSTOMER_BY_CHARGE: Select[Any] = select(Order.customer_id).where(
    Order.stripe_charge_id == bindparam("charge")
)
_CUSTOMER_BY_ID: Select[Any] = select(Customer.id).where(Customer.id == bindparam("id"))
_CUSTOMER_BY_STRIPE_ID: Select[Any] = select(Customer.id).where(
    Customer.stripe_customer_id == bindparam("stripe_id")
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _statements(conn: Conn) -> _Statements:
    bind = conn.get_bind() if isinstance(conn, AsyncSession) else conn
    name = bind.dialect.name
    try:
        return _STATEMENTS[name]
    except KeyError:
        raise RuntimeError(f"unsupported database dialect {name}") from None


async def _inserted(conn: Conn, stmt: Insert, values: dict[str, Any]) -> bool:
    result = await conn.execute(stmt, values)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_delivery(
    conn: Conn,
    *,
    source: str,
    external_id: str,
    event_type: str,
    payload: dict[str, Any],
    status: str = "processed",
) -> str | None:
    """Record a delivery; its id, or None when (source, external_id) was already recorded.

    The customer a Stripe delivery concerns is part of its payload (`payload["customer_id"]`),
    where the risk worker counts disputes from."""
    webhook_id = new_id("whk")
    now = utcnow()
    values: dict[str, Any] = {
        "id": webhook_id,
        "source": source,
        "external_id": external_id,
        "event_type": event_type,
        "payload": payload,
        "raw_body": None,
        "signature_verified": True,
        "status": status,
        "error": None,
        "received_at": now,
        "processed_at": now,
    }
    inserted = await _inserted(conn, _statements(conn).webhook, values)
    return webhook_id if inserted else None


@dataclass(frozen=True, slots=True)
class CustomerRef:
    id: str
    tier: str


async def find_or_create_customer(conn: Conn, email: str, name: str) -> CustomerRef:
    """The customer with this address; a new standard customer when unknown.

    Race-safe: two first emails from one new sender both try the insert; the unique email makes
    one of them a no-op, and both then read the same row. The common case (a known sender) is a
    single SELECT.
    """
    row = (await conn.execute(_CUSTOMER_BY_EMAIL, {"email": email})).one_or_none()
    if row is None:
        now = utcnow()
        await conn.execute(
            _statements(conn).customer,
            {
                "id": new_id("cust"),
                "email": email,
                "name": (name or email)[:200],
                "tier": "standard",
                "stripe_customer_id": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        row = (await conn.execute(_CUSTOMER_BY_EMAIL, {"email": email})).one()
    return CustomerRef(id=row.id, tier=row.tier)


async def find_or_create_ticket(
    conn: Conn, *, customer_id: str, thread_key: str, subject: str
) -> str:
    """The customer's ticket of this conversation (by thread key); opened when it is the
    customer's first message in it. Another customer's ticket is never joined, whatever thread
    the headers name.

    The common case (a new conversation) is one INSERT ... RETURNING; a reply reads the row.
    """
    now = utcnow()
    created = (
        await conn.execute(
            _statements(conn).ticket,
            {
                "id": new_id("tkt"),
                "customer_id": customer_id,
                "subject": subject,
                "status": "open",
                "channel": "email",
                "thread_key": thread_key,
                "resolved_by": None,
                "resolved_at": None,
                "closed_at": None,
                "created_at": now,
                "updated_at": now,
            },
        )
    ).scalar_one_or_none()
    if created is not None:
        return str(created)
    ticket_id: str = (
        await conn.execute(_TICKET_BY_THREAD, {"customer_id": customer_id, "key": thread_key})
    ).scalar_one()
    return ticket_id


async def insert_inbound_message(
    conn: Conn,
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
    """False when this provider message id is already stored."""
    return await _inserted(
        conn,
        _statements(conn).message,
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
            "draft_id": None,
            "extra": {},
            "received_at": received_at,
            "sent_at": None,
            "created_at": utcnow(),
        },
    )


async def customer_for_stripe(
    conn: Conn,
    *,
    charge_id: str | None,
    metadata_customer_id: str | None,
    stripe_customer_id: str | None,
) -> str | None:
    """Who a Stripe object concerns: the order's customer (orders.stripe_charge_id), then
    `metadata.customer_id` when it names a known customer, then customers.stripe_customer_id."""
    lookups = (
        (_CUSTOMER_BY_CHARGE, "charge", charge_id),
        (_CUSTOMER_BY_ID, "id", metadata_customer_id),
        (_CUSTOMER_BY_STRIPE_ID, "stripe_id", stripe_customer_id),
    )
    for query, name, value in lookups:
        if value:
            found = (await conn.execute(query, {name: value})).scalar_one_or_none()
            if found:
                return str(found)
    return None


async def add_outbox(
    conn: Conn,
    *,
    event_id: str,
    event: EventModel,
    source_webhook_id: str | None = None,
) -> bool:
    """Queue `event` for publishing; False when this event id is already queued."""
    now = utcnow()
    return await _inserted(
        conn,
        _statements(conn).outbox,
        {
            "id": new_id("obx"),
            "event_id": event_id,
            "event_name": event.name,
            "payload": event.to_data(),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "published_at": None,
            "last_error": None,
            "source_webhook_id": source_webhook_id,
            "created_at": now,
            "updated_at": now,
        },
    )
