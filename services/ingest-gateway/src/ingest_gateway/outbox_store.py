"""The outbox's own queries: claim due rows under a lease, then mark them published, retrying
or failed (see `outbox.py` for the publishing protocol these serve).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from service_kit.db import Database
from service_kit.models import OutboxEvent
from sqlalchemy import bindparam, func, or_, select, update


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: str
    event_id: str
    event_name: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime

    def wire(self) -> dict[str, Any]:
        ts = int(self.created_at.timestamp() * 1000)
        return {"name": self.event_name, "data": self.payload, "id": self.event_id, "ts": ts}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    lease_seconds: float = 30.0

    def delay(self, attempts: int) -> float:
        """Full-jitter exponential backoff: uniform(0.5, 1) x min(max, base x 2^(attempts-1))."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempts - 1))
        return ceiling * random.uniform(0.5, 1.0)


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxStore:
    """The outbox's own queries."""

    def __init__(self, db: Database, policy: RetryPolicy) -> None:
        self.db = db
        self.policy = policy

    async def claim(self, limit: int) -> list[OutboxRow]:
        now = _now()
        due = (
            select(OutboxEvent.id)
            .where(
                OutboxEvent.status == "pending",
                or_(OutboxEvent.next_attempt_at.is_(None), OutboxEvent.next_attempt_at <= now),
            )
            .order_by(OutboxEvent.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=now + timedelta(seconds=self.policy.lease_seconds))
            .returning(
                OutboxEvent.id,
                OutboxEvent.event_id,
                OutboxEvent.event_name,
                OutboxEvent.payload,
                OutboxEvent.attempts,
                OutboxEvent.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.db.transaction() as session:
            rows = (await session.execute(stmt)).all()
        claimed = [
            OutboxRow(r.id, r.event_id, r.event_name, r.payload, r.attempts, r.created_at)
            for r in rows
        ]
        claimed.sort(key=lambda row: row.created_at)
        return claimed

    async def mark_published(self, rows: list[OutboxRow]) -> None:
        now = _now()
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([row.id for row in rows]))
                .values(
                    status="published",
                    published_at=now,
                    attempts=OutboxEvent.attempts + 1,
                    last_error=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )

    async def mark_retry(self, rows: list[OutboxRow], error: str) -> None:
        """Schedule each row's next attempt (its own backoff), in one executemany round trip."""
        now = _now()
        table = OutboxEvent.__table__
        stmt = (
            table.update()  # type: ignore[attr-defined]
            .where(table.c.id == bindparam("row_id"), table.c.status == "pending")
            .values(
                attempts=bindparam("new_attempts"),
                next_attempt_at=bindparam("next_at"),
                last_error=error[:1000],
                updated_at=now,
            )
        )
        params = [
            {
                "row_id": row.id,
                "new_attempts": row.attempts + 1,
                "next_at": now + timedelta(seconds=self.policy.delay(row.attempts + 1)),
            }
            for row in rows
        ]
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt, params)

    async def mark_failed(self, row: OutboxRow, error: str) -> None:
        now = _now()
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == row.id)
                .values(
                    status="failed",
                    attempts=row.attempts + 1,
                    last_error=error[:1000],
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )

    async def seconds_until_next_due(self) -> float | None:
        """Seconds until the earliest pending row is due (0 if overdue); None when none pending."""
        async with self.db.session() as session:
            earliest = (
                await session.execute(
                    select(func.min(OutboxEvent.next_attempt_at)).where(
                        OutboxEvent.status == "pending"
                    )
                )
            ).scalar_one_or_none()
        if earliest is None:
            return None
        if earliest.tzinfo is None:
            earliest = earliest.replace(tzinfo=UTC)
        return max(0.0, (earliest - _now()).total_seconds())
