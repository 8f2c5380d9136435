"""System-of-record writes of reviewer decisions, inside the caller's `AsyncSession` transaction.

- approvals: unique (kind, request_id) and unique token id -> a second decision on one request,
  or a decision link used twice, raises IntegrityError (the caller answers 409);
- tickets: resolving is a conditional UPDATE (a resolved or closed ticket stays as it is).

The webhook path's writes (customers, tickets, messages, deliveries, outbox) are in `store.py`.
"""

from __future__ import annotations

from datetime import datetime

from service_kit.models import Approval, Ticket
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

_APPROVALS: Table = Approval.__table__  # type: ignore[assignment]


async def insert_approval(
    session: AsyncSession,
    *,
    approval_id: str,
    kind: str,
    request_id: str,
    decision: str,
    reviewer: str,
    edited_text: str | None,
    token_id: str,
    decided_at: datetime,
) -> None:
    """Plain INSERT: a second decision (kind, request_id) or a reused token id raises
    IntegrityError, which the caller turns into 409."""
    await session.execute(
        _APPROVALS.insert().values(
            id=approval_id,
            kind=kind,
            request_id=request_id,
            decision=decision,
            reviewer=reviewer,
            edited_text=edited_text,
            token_id=token_id,
            decided_at=decided_at,
            created_at=decided_at,
        )
    )


async def find_approval(session: AsyncSession, *, kind: str, request_id: str) -> Approval | None:
    return (
        await session.execute(
            select(Approval).where(Approval.kind == kind, Approval.request_id == request_id)
        )
    ).scalar_one_or_none()


async def find_ticket(session: AsyncSession, ticket_id: str) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


async def mark_ticket_resolved(
    session: AsyncSession, *, ticket_id: str, resolved_by: str, at: datetime
) -> None:
    await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status.not_in(("resolved", "closed")))
        .values(status="resolved", resolved_by=resolved_by, resolved_at=at, updated_at=at)
    )
