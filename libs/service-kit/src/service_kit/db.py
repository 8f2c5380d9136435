"""Async SQLAlchemy 2 engine and sessions for Postgres (asyncpg) and SQLite (aiosqlite).

The backend is chosen by the URL (`DATABASE_URL`):
- `postgresql+asyncpg://user@host:5432/db` — pooled, pre-pinged connections.
- `sqlite+aiosqlite:///path/to/file.db` — WAL journal, foreign keys on, a busy timeout, and every
  transaction opened with `BEGIN IMMEDIATE`: SQLite cannot upgrade a read transaction to a write
  one while another writer is active (it fails at once instead of waiting), so taking the write
  lock up front turns "database is locked" errors into a short wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.nerve/nerve.db"
SQLITE_BUSY_TIMEOUT_MS = 15_000


class DatabaseUnavailable(RuntimeError):
    """The database did not answer within the allowed time."""


def normalize_url(url: str | URL) -> URL:
    """Parse a DATABASE_URL and pick the async driver for bare `postgresql://` / `sqlite://`."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
            parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
            parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(
            f"unsupported DATABASE_URL backend {backend!r}: use postgresql+asyncpg:// or "
            "sqlite+aiosqlite://"
        )
    return parsed


def backend_name(url: str | URL) -> str:
    """`"postgresql"` or `"sqlite"`."""
    return normalize_url(url).get_backend_name()


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def _install_sqlite_pragmas(engine: AsyncEngine, *, memory: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) emit BEGIN, so our BEGIN IMMEDIATE is used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for `url` with the backend's settings (see the module docstring)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = _is_memory_sqlite(parsed)
        if memory:
            kwargs.setdefault("poolclass", StaticPool)
        elif parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_async_engine(parsed, echo=echo, connect_args=connect_args, **kwargs)
        _install_sqlite_pragmas(engine, memory=memory)
        return engine
    if "poolclass" not in kwargs:  # sizing applies to the default QueuePool only (not NullPool)
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_timeout", 10)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(parsed, echo=echo, **kwargs)


class Database:
    """An AsyncEngine plus its session factory.

    >>> db = Database("sqlite+aiosqlite:///.nerve/nerve.db")
    >>> async with db.transaction() as session:   # commits on success, rolls back on error
    ...     session.add(row)
    >>> async with db.session() as session:       # you commit (or not) yourself
    ...     rows = (await session.scalars(select(Customer))).all()
    """

    def __init__(self, url: str | URL, *, echo: bool = False, **engine_kwargs: Any) -> None:
        self.url: URL = normalize_url(url)
        self.engine: AsyncEngine = create_engine(self.url, echo=echo, **engine_kwargs)
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @property
    def backend(self) -> str:
        """`"postgresql"` or `"sqlite"`."""
        return self.url.get_backend_name()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; nothing is committed unless you call `await session.commit()`."""
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction: commit on success, rollback on any exception."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        """True when `SELECT 1` succeeds; never raises."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


async def wait_for_database(url: str | URL, timeout: float = 30.0, interval: float = 0.5) -> None:
    """Wait until the database answers `SELECT 1`; raise `DatabaseUnavailable` after `timeout`."""
    deadline = time.monotonic() + timeout
    database = Database(url)
    last_error: BaseException | None = None
    try:
        while True:
            try:
                async with database.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return
            except Exception as error:
                last_error = error
            if time.monotonic() >= deadline:
                safe = database.url.render_as_string(hide_password=True)
                raise DatabaseUnavailable(
                    f"database {safe} did not answer within {timeout:.0f}s: {last_error}"
                ) from last_error
            await asyncio.sleep(interval)
    finally:
        await database.dispose()
