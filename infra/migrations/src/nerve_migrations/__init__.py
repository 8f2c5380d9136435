"""Alembic migrations and seed data for Nerve's system of record.

    python -m nerve_migrations upgrade     # wait for the DB, alembic upgrade head, seed
    python -m nerve_migrations downgrade   # alembic downgrade base
    python -m nerve_migrations seed        # seed only (idempotent)

The functions below are synchronous and safe to call from inside a running event loop (they then
run in a worker thread), so both tools and async tests can use them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from service_kit.db import wait_for_database

from .seed import CUSTOMERS, ORDERS, seed_async

T = TypeVar("T")

__all__ = [
    "CUSTOMERS",
    "ORDERS",
    "current",
    "downgrade",
    "migrate",
    "seed",
    "upgrade",
]


def _outside_event_loop(function: Callable[[], T]) -> T:
    """Run `function` here, or in a worker thread when this thread already runs an event loop
    (Alembic's env.py and `asyncio.run` cannot nest inside a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


def _run(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return _outside_event_loop(lambda: asyncio.run(coroutine_factory()))


def upgrade(url: str, revision: str = "head") -> None:
    """`alembic upgrade <revision>` on `url`."""
    from alembic import command  # lazily: heavy, and only needed to migrate

    from .config import alembic_config

    _outside_event_loop(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str = "base") -> None:
    """`alembic downgrade <revision>` on `url` (default: drop everything)."""
    from alembic import command  # lazily: heavy, and only needed to migrate

    from .config import alembic_config

    _outside_event_loop(lambda: command.downgrade(alembic_config(url), revision))


def current(url: str) -> str | None:
    """The revision `url` is at, or None for an empty database."""

    async def _read() -> str | None:
        from service_kit.db import Database
        from sqlalchemy import text

        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                try:
                    result = await connection.execute(
                        text("SELECT version_num FROM alembic_version")
                    )
                except Exception:
                    return None
                return result.scalar_one_or_none()
        finally:
            await database.dispose()

    return _run(_read)


def seed(url: str) -> dict[str, int]:
    """Insert the missing seed rows; returns the number inserted per table."""
    return _run(lambda: seed_async(url))


def migrate(url: str, *, wait_timeout: float = 30.0, with_seed: bool = True) -> dict[str, int]:
    """What `python -m nerve_migrations upgrade` does: wait, upgrade head, seed."""
    _run(lambda: wait_for_database(url, timeout=wait_timeout))
    upgrade(url)
    return seed(url) if with_seed else {}
