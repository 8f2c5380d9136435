"""Database plumbing: URL handling, ping / wait, transactions, SQLite pragmas, fresh databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_kit.db import (
    Database,
    DatabaseUnavailable,
    backend_name,
    normalize_url,
    wait_for_database,
)
from service_kit.ids import new_id, new_ulid
from service_kit.models import Customer, Order
from sqlalchemy import func, select, text

UNREACHABLE = "postgresql+asyncpg://nobody@127.0.0.1:1/nowhere"


def test_urls_pick_the_async_driver() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert backend_name("sqlite+aiosqlite:///x.db") == "sqlite"
    with pytest.raises(ValueError, match="unsupported DATABASE_URL backend 'mysql'"):
        normalize_url("mysql://root@localhost/db")


def test_ids_are_prefixed_sortable_and_unique() -> None:
    ids = [new_id("msg") for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(i.startswith("msg_") and len(i) == 30 for i in ids)
    assert new_ulid(1_000) < new_ulid(2_000)
    with pytest.raises(ValueError, match="prefix"):
        new_id("Bad Prefix")


async def test_ping_and_wait(database: Database) -> None:
    assert await database.ping() is True
    await wait_for_database(database.url, timeout=5)

    unreachable = Database(UNREACHABLE)
    try:
        assert await unreachable.ping() is False
    finally:
        await unreachable.dispose()
    with pytest.raises(DatabaseUnavailable, match="did not answer within 1s"):
        await wait_for_database(UNREACHABLE, timeout=1, interval=0.2)


async def test_transaction_commits_or_rolls_back(database: Database) -> None:
    kept, dropped = new_id("cust"), new_id("cust")
    async with database.transaction() as session:
        session.add(Customer(id=kept, email=f"{kept}@example.com", name="Kept", tier="pro"))
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            session.add(Customer(id=dropped, email=f"{dropped}@example.com", name="X"))
            await session.flush()
            raise RuntimeError("boom")
    async with database.session() as session:
        found = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.id.in_([kept, dropped]))
        )
    assert found == 1


async def test_sqlite_runs_with_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'pragmas.db'}")
    try:
        async with database.session() as session:
            pragmas = {
                name: (await session.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await database.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 15000}


async def test_fresh_databases_are_pristine_and_independent(
    fresh_database_url: str, database_url: str
) -> None:
    assert fresh_database_url != database_url
    fresh, shared = Database(fresh_database_url), Database(database_url)
    try:
        async with fresh.session() as session:
            assert await session.scalar(select(func.count()).select_from(Customer)) == 5
        async with fresh.transaction() as session:
            await session.execute(text("DELETE FROM orders WHERE customer_id = 'cust_005'"))
        async with shared.session() as session:
            untouched = await session.scalar(
                select(func.count()).select_from(Order).where(Order.customer_id == "cust_005")
            )
        assert untouched == 2
    finally:
        await fresh.dispose()
        await shared.dispose()
