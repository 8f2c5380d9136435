"""Revision 0002 on data written under 0001 (SQLite and Postgres): `orders.refunded_cents` is
recomputed from issued refunds (an order refunded twice by the old bug is clamped to its amount),
the CHECK then refuses a total above the amount, and a thread key may repeat across customers
but not within one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nerve_migrations
import pytest
from service_kit.db import Database
from service_kit.testing import (
    POSTGRES,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError


@pytest.fixture
def database_at_0001(database_backend: str, tmp_path: Path) -> Iterator[str]:
    if database_backend == POSTGRES:
        admin = postgres_admin_url()
        assert admin is not None
        url = create_postgres_database(admin)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'at0001.db'}"
    nerve_migrations.upgrade(url, "0001")
    try:
        yield url
    finally:
        if database_backend == POSTGRES:
            drop_postgres_database(url)


CUSTOMERS = [("cust_a", "a@example.com"), ("cust_b", "b@example.com")]
ORDERS = [  # id, amount, refunded_cents as the old code left it
    ("ord_twice", 12_000, 24_000),  # refunded twice by two racing requests (the bug)
    ("ord_part", 5_000, 1_000),
    ("ord_none", 3_000, 0),
]
REFUNDS = [  # id, order, amount, status
    ("rfr_1", "ord_twice", 12_000, "issued"),
    ("rfr_2", "ord_twice", 12_000, "issued"),
    ("rfr_3", "ord_part", 1_000, "issued"),
    ("rfr_4", "ord_part", 4_000, "rejected"),
    ("rfr_5", "ord_none", 3_000, "timed_out"),
]


async def write_0001_data(db: Database) -> None:
    async with db.transaction() as session:
        for customer_id, email in CUSTOMERS:
            await session.execute(
                text(
                    "INSERT INTO customers (id, email, name, tier) VALUES (:id, :email, 'x', 'pro')"
                ),
                {"id": customer_id, "email": email},
            )
        for order_id, amount, refunded in ORDERS:
            await session.execute(
                text(
                    "INSERT INTO orders (id, customer_id, description, amount_cents, currency, "
                    "status, refunded_cents) VALUES (:id, 'cust_a', '', :amount, 'usd', 'paid', "
                    ":refunded)"
                ),
                {"id": order_id, "amount": amount, "refunded": refunded},
            )
        for request_id, order_id, amount, status in REFUNDS:
            await session.execute(
                text(
                    "INSERT INTO refund_requests (id, idempotency_key, customer_id, order_id, "
                    "amount_cents, currency, reason, status, risk_reasons) VALUES (:id, :id, "
                    "'cust_a', :order_id, :amount, 'usd', '', :status, '[]')"
                ),
                {"id": request_id, "order_id": order_id, "amount": amount, "status": status},
            )
        await session.execute(
            text(
                "INSERT INTO tickets (id, customer_id, subject, status, channel, thread_key) "
                "VALUES ('tkt_a', 'cust_a', '', 'open', 'email', '<root@mail>')"
            )
        )


async def refunded(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(text("SELECT id, refunded_cents FROM orders"))
        return {row[0]: row[1] for row in rows.all()}


async def add_ticket(db: Database, ticket_id: str, customer_id: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO tickets (id, customer_id, subject, status, channel, thread_key) "
                "VALUES (:id, :customer, '', 'open', 'email', '<root@mail>')"
            ),
            {"id": ticket_id, "customer": customer_id},
        )


async def test_0002_backfills_refunded_totals_and_enforces_both_invariants(
    database_at_0001: str,
) -> None:
    url = database_at_0001
    db = Database(url)
    try:
        await write_0001_data(db)
        await db.dispose()
        nerve_migrations.upgrade(url)
        assert nerve_migrations.current(url) == "0002"

        assert await refunded(db) == {"ord_twice": 12_000, "ord_part": 1_000, "ord_none": 0}
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await session.execute(
                    text("UPDATE orders SET refunded_cents = 3001 WHERE id = 'ord_none'")
                )
        # The same thread key for another customer is a ticket of its own; twice for one is not.
        await add_ticket(db, "tkt_b", "cust_b")
        with pytest.raises(IntegrityError):
            await add_ticket(db, "tkt_a2", "cust_a")
    finally:
        await db.dispose()

    # And back, with the data in place: the shared thread key stays on the oldest ticket.
    nerve_migrations.downgrade(url, "0001")
    assert nerve_migrations.current(url) == "0001"
    db = Database(url)
    try:
        async with db.session() as session:
            keys = dict((await session.execute(text("SELECT id, thread_key FROM tickets"))).all())
    finally:
        await db.dispose()
    assert keys == {"tkt_a": "<root@mail>", "tkt_b": None}
