"""Shared pieces of the repositories: natural-key inserts, audit writes, errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from service_kit.audit import AuditAction, record_audit
from service_kit.db import Database
from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

ACTOR = "support-worker"


class NotFound(LookupError):
    """A row the flow depends on does not exist (bad event data: not retryable)."""


def insert_ignoring_duplicates(
    session: AsyncSession, table: Any, values: dict[str, Any], conflict: list[str]
) -> Insert:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING on Postgres and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return (
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=conflict)
        )
    return sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)


@dataclass(frozen=True)
class AuditContext:
    """Who writes an audit row: the run and function, for traceability."""

    run_id: str | None = None
    function_id: str | None = None


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


# The address outbound replies come from unless SUPPORT_ADDRESS says otherwise.
DEFAULT_SUPPORT_ADDRESS = "support@nerve.localhost"


class RepositoryBase:
    def __init__(self, db: Database, *, support_address: str = DEFAULT_SUPPORT_ADDRESS) -> None:
        self.db = db
        self.support_address = support_address

    # -- audit --------------------------------------------------------------------------------

    async def audit(
        self,
        action: AuditAction,
        *,
        key: str,
        ctx: AuditContext,
        customer_id: str | None = None,
        ticket_id: str | None = None,
        actor: str = ACTOR,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        async with self.db.transaction() as session:
            return await self._audit(
                session,
                action,
                key=key,
                ctx=ctx,
                customer_id=customer_id,
                ticket_id=ticket_id,
                actor=actor,
                payload=payload,
            )

    @staticmethod
    async def _audit(
        session: AsyncSession,
        action: AuditAction,
        *,
        key: str,
        ctx: AuditContext,
        customer_id: str | None = None,
        ticket_id: str | None = None,
        actor: str = ACTOR,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        return await record_audit(
            session,
            action,
            key=key,
            actor=actor,
            customer_id=customer_id,
            ticket_id=ticket_id,
            run_id=ctx.run_id,
            function_id=ctx.function_id,
            payload=payload,
        )
