"""Escalations and reviewer decisions."""

from __future__ import annotations

import hashlib
from typing import Any

from service_kit.audit import AuditAction
from service_kit.ids import new_id
from service_kit.models import (
    Approval,
    Draft,
    Escalation,
    utcnow,
)
from sqlalchemy import select, update

from .base import AuditContext, NotFound, RepositoryBase, insert_ignoring_duplicates


class EscalationRepository(RepositoryBase):
    # -- escalations ---------------------------------------------------------------------------

    async def create_escalation(
        self,
        *,
        key: str,
        customer_id: str,
        ticket_id: str,
        message_id: str | None,
        reason: str,
        draft_id: str,
        ctx: AuditContext,
    ) -> str:
        async with self.db.transaction() as session:
            draft = await session.get(Draft, draft_id)
            values: dict[str, Any] = {
                "id": new_id("esc"),
                "idempotency_key": key,
                "customer_id": customer_id,
                "ticket_id": ticket_id,
                "message_id": message_id,
                "reason": reason[:200],
                "draft_text": draft.body_text if draft else "",
                "status": "pending",
                "run_id": ctx.run_id,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            await session.execute(
                insert_ignoring_duplicates(session, Escalation, values, ["idempotency_key"])
            )
            escalation = (
                await session.scalars(select(Escalation).where(Escalation.idempotency_key == key))
            ).one()
            await self._audit(
                session,
                AuditAction.ESCALATION_REQUESTED,
                key=f"escalation-requested-{escalation.id}",
                ctx=ctx,
                customer_id=customer_id,
                ticket_id=ticket_id,
                payload={"escalation_id": escalation.id, "draft_id": draft_id},
            )
            return escalation.id

    async def escalation_draft_id(self, escalation_id: str) -> str | None:
        async with self.db.session() as session:
            escalation = await session.get(Escalation, escalation_id)
            if escalation is None:
                raise NotFound(f"escalation {escalation_id} does not exist")
            if escalation.message_id is None:
                return None
            return (
                await session.scalars(
                    select(Draft.id).where(Draft.message_id == escalation.message_id)
                )
            ).first()

    async def escalation_decision(self, escalation_id: str) -> tuple[str, str, str] | None:
        """The stored reviewer decision `(decision, reviewer, approval_id)`, if any."""
        async with self.db.session() as session:
            approval = (
                await session.scalars(
                    select(Approval).where(
                        Approval.kind == "escalation", Approval.request_id == escalation_id
                    )
                )
            ).first()
            return (approval.decision, approval.reviewer, approval.id) if approval else None

    async def close_escalation_wait(self, escalation_id: str) -> tuple[str, str, str] | None:
        """The wait for a reviewer ended without an event: time the escalation out, unless a
        reviewer decided it first (the gateway moves the row out of `pending` in the
        transaction that stores the decision). Returns the stored `(decision, reviewer,
        approval_id)` when the reviewer won, None when it is now `timed_out` (or ended
        otherwise, e.g. cancelled)."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id, Escalation.status == "pending")
                .values(
                    status="timed_out",
                    decision="timed_out",
                    reviewer="timeout",
                    decided_at=utcnow(),
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                return None
            approval = (
                await session.scalars(
                    select(Approval).where(
                        Approval.kind == "escalation", Approval.request_id == escalation_id
                    )
                )
            ).first()
            return (approval.decision, approval.reviewer, approval.id) if approval else None

    async def cancel_waiting_escalation(
        self, escalation_id: str, *, run_id: str, function_id: str
    ) -> bool:
        """The escalation's gate run was cancelled: a still `pending` escalation ends
        `cancelled`, audited once. One already decided, timed out or posted is left alone."""
        ctx = AuditContext(run_id=run_id, function_id=function_id)
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id, Escalation.status == "pending")
                .values(status="cancelled", updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            escalation = await session.get(Escalation, escalation_id)
            if escalation is None or escalation.status != "cancelled":
                return False
            await self._audit(
                session,
                AuditAction.ESCALATION_CANCELLED,
                key=f"escalation-cancelled-{escalation_id}",
                ctx=ctx,
                customer_id=escalation.customer_id,
                ticket_id=escalation.ticket_id,
                payload={"escalation_id": escalation_id, "cancelled_run_id": run_id},
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def edited_text(self, approval_id: str) -> str | None:
        async with self.db.session() as session:
            approval = await session.get(Approval, approval_id)
            return approval.edited_text if approval else None

    async def resolve_escalation(
        self,
        escalation_id: str,
        *,
        outcome: str,
        reviewer: str,
        action: AuditAction,
        ctx: AuditContext,
        final_text: str | None = None,
        approval_id: str | None = None,
    ) -> bool:
        """Record the escalation's outcome (unless the gateway already did, in the decision's
        own transaction) and audit it once. An edit's audit row names where the edited text
        lives (the approval) with its length and digest, not the text: the audit log keeps ids
        and short summaries, and the text itself is the escalation's `final_text`."""
        async with self.db.transaction() as session:
            escalation = await session.get(Escalation, escalation_id)
            if escalation is None:
                raise NotFound(f"escalation {escalation_id} does not exist")
            if escalation.status == "pending":
                escalation.status = outcome
                escalation.decision = outcome
                escalation.reviewer = reviewer
                escalation.final_text = final_text
                escalation.decided_at = utcnow()
            payload: dict[str, Any] = {"escalation_id": escalation_id, "reviewer": reviewer}
            if approval_id:
                payload["approval_id"] = approval_id
            if final_text is not None:
                payload["edited_text"] = {
                    "stored_in": "escalations.final_text",
                    "chars": len(final_text),
                    "sha256": hashlib.sha256(final_text.encode()).hexdigest(),
                }
            return await self._audit(
                session,
                action,
                key=f"escalation-{outcome}-{escalation_id}",
                ctx=ctx,
                customer_id=escalation.customer_id,
                ticket_id=escalation.ticket_id,
                actor=reviewer,
                payload=payload,
            )

    async def escalation_text(self, escalation_id: str) -> str:
        async with self.db.session() as session:
            escalation = await session.get(Escalation, escalation_id)
            if escalation is None:
                raise NotFound(f"escalation {escalation_id} does not exist")
            return escalation.final_text or escalation.draft_text

    async def mark_escalation_posted(self, escalation_id: str, message_id: str) -> None:
        async with self.db.transaction() as session:
            escalation = await session.get(Escalation, escalation_id)
            if escalation is not None and escalation.posted_message_id is None:
                escalation.posted_message_id = message_id
                escalation.posted_at = utcnow()
