"""Seed data: the five course customers and their orders, so flows have something to refund.

Inserted idempotently (`ON CONFLICT DO NOTHING` on the primary key): running the seed twice, or
after a service created rows of its own, changes nothing that exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service_kit.db import Database
from service_kit.models import Customer, Order, utcnow
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class SeedCustomer:
    id: str
    email: str
    name: str
    tier: str
    account_age_days: int


@dataclass(frozen=True)
class SeedOrder:
    id: str
    customer_id: str
    description: str
    amount_cents: int
    age_days: int


CUSTOMERS: tuple[SeedCustomer, ...] = (
    SeedCustomer("cust_001", "ada@example.com", "Ada Lovelace", "enterprise", 700),
    SeedCustomer("cust_002", "grace@example.com", "Grace Hopper", "pro", 480),
    SeedCustomer("cust_003", "linus@example.com", "Linus Torvalds", "pro", 260),
    SeedCustomer("cust_004", "edsger@example.com", "Edsger Dijkstra", "standard", 120),
    # A young account: the risk rules treat it with more suspicion.
    SeedCustomer("cust_005", "alan@example.com", "Alan Turing", "standard", 20),
)

ORDERS: tuple[SeedOrder, ...] = (
    SeedOrder("ord_1001", "cust_001", "Enterprise plan, annual", 25000, 40),
    SeedOrder("ord_1002", "cust_001", "Onboarding workshop", 12000, 9),
    SeedOrder("ord_1003", "cust_001", "Extra seats (5)", 4999, 3),
    SeedOrder("ord_1004", "cust_002", "Pro plan, annual", 9900, 60),
    SeedOrder("ord_1005", "cust_002", "Priority support add-on", 2999, 6),
    SeedOrder("ord_1006", "cust_003", "Pro plan, monthly", 2999, 25),
    SeedOrder("ord_1007", "cust_003", "Pro plan, monthly", 2999, 2),
    SeedOrder("ord_1008", "cust_004", "Standard plan, annual", 4900, 100),
    SeedOrder("ord_1009", "cust_004", "Course: Distributed Systems", 1999, 4),
    SeedOrder("ord_1010", "cust_005", "Standard plan, monthly", 1999, 15),
    SeedOrder("ord_1011", "cust_005", "Hardware kit", 18900, 1),
)


def _rows(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    customers = [
        {
            "id": c.id,
            "email": c.email,
            "name": c.name,
            "tier": c.tier,
            "stripe_customer_id": f"cus_seed_{c.id.removeprefix('cust_')}",
            "created_at": now - timedelta(days=c.account_age_days),
            "updated_at": now,
        }
        for c in CUSTOMERS
    ]
    orders = [
        {
            "id": o.id,
            "customer_id": o.customer_id,
            "description": o.description,
            "amount_cents": o.amount_cents,
            "currency": "usd",
            "status": "paid",
            "stripe_charge_id": f"ch_seed_{o.id.removeprefix('ord_')}",
            "refunded_cents": 0,
            "created_at": now - timedelta(days=o.age_days),
            "updated_at": now,
        }
        for o in ORDERS
    ]
    return customers, orders


async def _insert_missing(
    connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]
) -> int:
    dialect = connection.dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=["id"])
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["id"])
    inserted = 0
    for row in rows:  # row by row: rowcount per row is reliable on both drivers
        result = await connection.execute(statement, row)
        inserted += max(result.rowcount, 0)
    return inserted


async def seed_async(url: str) -> dict[str, int]:
    """Insert the seed rows that are missing; returns how many rows were inserted per table."""
    customers, orders = _rows(utcnow())
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            return {
                "customers": await _insert_missing(connection, Customer.__table__, customers),  # type: ignore[arg-type]
                "orders": await _insert_missing(connection, Order.__table__, orders),  # type: ignore[arg-type]
            }
    finally:
        await database.dispose()
