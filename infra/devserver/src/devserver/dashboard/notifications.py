"""Read-only view of the notifier's local sinks: the `notifications` table of the system of record.

The notifier records every Slack / email message it sends (or, offline, only records) in that
table; the dashboard lists the latest rows. Read with SQLAlchemy Core text SQL so the devserver
does not depend on the services' model package.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}

_COLUMNS = (
    "id, channel, kind, recipient, subject, body, status, attempts, last_error, "
    "customer_id, related_id, run_id, created_at, sent_at"
)


def async_url(url: str) -> str:
    """Accept sync spellings (`sqlite:///x.db`, `postgresql://...`) and make them async."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if "+" in scheme:
        return url
    driver = _ASYNC_DRIVERS.get(base)
    if driver is None:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
    return f"{driver}://{rest}"


class NotificationReader:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self._engine: AsyncEngine | None = None

    def _get_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self.url, pool_pre_ping=True)
        return self._engine

    async def latest(self, *, limit: int = 100, channel: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {_COLUMNS} FROM notifications"
        params: dict[str, Any] = {"limit": limit}
        if channel:
            sql += " WHERE channel = :channel"
            params["channel"] = channel
        sql += " ORDER BY created_at DESC LIMIT :limit"
        async with self._get_engine().connect() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row._mapping) for row in result]

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
