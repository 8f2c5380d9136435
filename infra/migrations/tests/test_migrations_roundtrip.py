"""Alembic history on SQLite and Postgres: upgrade / downgrade / upgrade, models == migrations,
idempotent seed, and the `python -m nerve_migrations` CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nerve_migrations
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nerve_migrations.__main__ import cli
from service_kit.db import Database
from service_kit.models import Base, Customer, Order
from service_kit.testing import (
    POSTGRES,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

EXPECTED_TABLES = {
    "customers",
    "orders",
    "tickets",
    "messages",
    "drafts",
    "refund_requests",
    "approvals",
    "escalations",
    "risk_profiles",
    "notifications",
    "ticket_embeddings",
    "weekly_metrics",
    "outbox",
    "audit_log",
    "inbound_webhooks",
}


@pytest.fixture
def empty_database_url(database_backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty (never migrated) database on the current backend."""
    if database_backend == POSTGRES:
        admin = postgres_admin_url()
        assert admin is not None
        url = create_postgres_database(admin)
        try:
            yield url
        finally:
            drop_postgres_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


async def _tables(url: str) -> set[str]:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await database.dispose()
    return set(names)


async def _schema_diff(url: str) -> list[object]:
    def compare(sync: Connection) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await database.dispose()


async def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url
    nerve_migrations.upgrade(url)
    assert await _tables(url) == EXPECTED_TABLES | {"alembic_version"}
    assert nerve_migrations.current(url) == "0002"

    nerve_migrations.downgrade(url, "base")
    assert await _tables(url) == {"alembic_version"}
    assert nerve_migrations.current(url) is None

    nerve_migrations.upgrade(url)
    assert await _tables(url) == EXPECTED_TABLES | {"alembic_version"}
    # The migrated schema is exactly what the models declare (nothing drifted).
    assert await _schema_diff(url) == []


async def test_seed_is_idempotent(empty_database_url: str) -> None:
    url = empty_database_url
    nerve_migrations.upgrade(url)
    assert nerve_migrations.seed(url) == {"customers": 5, "orders": len(nerve_migrations.ORDERS)}
    assert nerve_migrations.seed(url) == {"customers": 0, "orders": 0}

    database = Database(url)
    try:
        async with database.session() as session:
            customers = (await session.scalars(select(Customer).order_by(Customer.id))).all()
            order_counts = dict(
                (
                    await session.execute(
                        select(Order.customer_id, func.count()).group_by(Order.customer_id)
                    )
                ).all()
            )
    finally:
        await database.dispose()
    assert [(c.id, c.email, c.tier, c.name) for c in customers] == [
        ("cust_001", "ada@example.com", "enterprise", "Ada Lovelace"),
        ("cust_002", "grace@example.com", "pro", "Grace Hopper"),
        ("cust_003", "linus@example.com", "pro", "Linus Torvalds"),
        ("cust_004", "edsger@example.com", "standard", "Edsger Dijkstra"),
        ("cust_005", "alan@example.com", "standard", "Alan Turing"),
    ]
    assert all(2 <= n <= 3 for n in order_counts.values()) and len(order_counts) == 5
    ages = sorted((customers[0].updated_at - c.created_at).days for c in customers)
    assert ages[0] < 60 and 365 < ages[-1] <= 730  # spread over the past two years


runner = CliRunner()


def test_cli_upgrade_seed_downgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    upgraded = runner.invoke(cli, ["upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "at revision 0002" in upgraded.output and "'customers': 5" in upgraded.output

    monkeypatch.delenv("DATABASE_URL")
    down = runner.invoke(cli, ["downgrade", "--url", url])
    assert down.exit_code == 0, down.output
    assert "at revision None" in down.output


def test_cli_gives_up_on_an_unreachable_database() -> None:
    result = runner.invoke(
        cli, ["upgrade", "--wait", "1", "--url", "postgresql+asyncpg://nobody@127.0.0.1:1/x"]
    )
    assert result.exit_code == 1
    assert "did not answer within 1s" in result.output


def test_python_dash_m_rejects_a_bad_url() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nerve_migrations", "upgrade", "--url", "mysql://root@h/nerve"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "unsupported DATABASE_URL backend 'mysql'" in result.stderr
