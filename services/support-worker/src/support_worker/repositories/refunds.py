"""Refund requests, their risk, decisions and issue records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service_kit.audit import AuditAction
from service_kit.ids import new_id
from service_kit.models import (
    Approval,
    Order,
    RefundRequest,
    utcnow,
)
from sqlalchemy import select, update

from .base import ACTOR, AuditContext, NotFound, RepositoryBase, insert_ignoring_duplicates


@dataclass(frozen=True)
class RefundRecord:
    request_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    charge_id: str | None
    provider_refund_id: str | None


class RefundRepository(RepositoryBase):
    # -- refunds ------------------------------------------------------------------------------

    async def create_refund_request(
        self,
        *,
        key: str,
        customer_id: str,
        order_id: str,
        ticket_id: str | None,
        message_id: str | None,
        amount_cents: int | None,
        reason: str,
        ctx: AuditContext,
    ) -> RefundRecord | None:
        """The refund request named `key` (created once, audited `refund_requested`), or None
        when the order is not the customer's or has nothing left to refund."""
        async with self.db.transaction() as session:
            order = await session.get(Order, order_id)
            if order is None or order.customer_id != customer_id:
                return None
            refundable = order.amount_cents - order.refunded_cents
            amount = min(amount_cents or refundable, refundable)
            if amount <= 0:
                return None
            values: dict[str, Any] = {
                "id": new_id("rfr"),
                "idempotency_key": key,
                "customer_id": customer_id,
                "order_id": order_id,
                "ticket_id": ticket_id,
                "message_id": message_id,
                "amount_cents": amount,
                "currency": order.currency,
                "reason": reason[:500],
                "status": "pending",
                "risk_reasons": [],
                "run_id": ctx.run_id,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            await session.execute(
                insert_ignoring_duplicates(session, RefundRequest, values, ["idempotency_key"])
            )
            request = (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.idempotency_key == key)
                )
            ).one()
            await self._audit(
                session,
                AuditAction.REFUND_REQUESTED,
                key=f"refund-requested-{request.id}",
                ctx=ctx,
                customer_id=customer_id,
                ticket_id=ticket_id,
                payload={"request_id": request.id, "order_id": order_id, "amount_cents": amount},
            )
            return self._refund_record(request, order)

    async def refund(self, request_id: str) -> RefundRecord:
        async with self.db.session() as session:
            request = await session.get(RefundRequest, request_id)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            order = await session.get(Order, request.order_id)
            return self._refund_record(request, order)

    @staticmethod
    def _refund_record(request: RefundRequest, order: Order | None) -> RefundRecord:
        return RefundRecord(
            request_id=request.id,
            order_id=request.order_id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            status=request.status,
            charge_id=order.stripe_charge_id if order else None,
            provider_refund_id=request.provider_refund_id,
        )

    async def record_risk(
        self, request_id: str, *, score: float, level: str, reasons: list[str], auto: bool
    ) -> None:
        async with self.db.transaction() as session:
            request = await session.get(RefundRequest, request_id)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            request.risk_score = score
            request.risk_level = level
            request.risk_reasons = reasons[:20]
            if request.status == "pending":
                if auto:
                    request.status = "approved"
                    request.auto_approved = True
                    request.decided_by = "auto"
                    request.decided_at = utcnow()
                else:
                    request.status = "awaiting_approval"

    async def refund_decision(self, request_id: str) -> tuple[str, str] | None:
        """The stored human decision `(decision, reviewer)` for a refund request, if any."""
        async with self.db.session() as session:
            approval = (
                await session.scalars(
                    select(Approval).where(
                        Approval.kind == "refund", Approval.request_id == request_id
                    )
                )
            ).first()
            return (approval.decision, approval.reviewer) if approval else None

    async def decide_refund(
        self, request_id: str, *, approved: bool, decided_by: str, timed_out: bool = False
    ) -> None:
        async with self.db.transaction() as session:
            status = "approved" if approved else ("timed_out" if timed_out else "rejected")
            await session.execute(
                update(RefundRequest)
                .where(
                    RefundRequest.id == request_id,
                    RefundRequest.status.in_(("pending", "awaiting_approval")),
                )
                .values(status=status, decided_by=decided_by, decided_at=utcnow())
            )

    async def mark_refund_issued(
        self, request_id: str, *, provider_refund_id: str, ctx: AuditContext
    ) -> bool:
        """Record the issued refund once (status guard) and audit `refund_issued` once."""
        async with self.db.transaction() as session:
            request = await session.get(RefundRequest, request_id)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if request.status != "issued":
                request.status = "issued"
                request.provider_refund_id = provider_refund_id
                request.issued_at = utcnow()
                order = await session.get(Order, request.order_id)
                if order is not None:
                    order.refunded_cents += request.amount_cents
                    full = order.refunded_cents >= order.amount_cents
                    order.status = "refunded" if full else "partially_refunded"
            return await self._audit(
                session,
                AuditAction.REFUND_ISSUED,
                key=f"refund-issued-{request_id}",
                ctx=ctx,
                customer_id=request.customer_id,
                ticket_id=request.ticket_id,
                actor=request.decided_by or ACTOR,
                payload={
                    "request_id": request_id,
                    "order_id": request.order_id,
                    "amount_cents": request.amount_cents,
                    "provider_refund_id": provider_refund_id,
                },
            )

    async def mark_refund_blocked(
        self, request_id: str, *, outcome: str, decided_by: str, ctx: AuditContext
    ) -> bool:
        async with self.db.transaction() as session:
            request = await session.get(RefundRequest, request_id)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if request.status in ("pending", "awaiting_approval", "approved"):
                request.status = outcome
                request.decided_by = request.decided_by or decided_by
                request.decided_at = request.decided_at or utcnow()
            return await self._audit(
                session,
                AuditAction.REFUND_BLOCKED,
                key=f"refund-blocked-{request_id}",
                ctx=ctx,
                customer_id=request.customer_id,
                ticket_id=request.ticket_id,
                actor=decided_by,
                payload={
                    "request_id": request_id,
                    "order_id": request.order_id,
                    "outcome": outcome,
                },
            )

    async def refund_outcome_text(self, message_id: str, order_id: str) -> str:
        """What the agent's `request_refund` tool reports after approval."""
        async with self.db.session() as session:
            request = (
                await session.scalars(
                    select(RefundRequest)
                    .where(
                        RefundRequest.message_id == message_id, RefundRequest.order_id == order_id
                    )
                    .order_by(RefundRequest.created_at.desc())
                )
            ).first()
            if request is None:
                return "No refund request was recorded for this order."
            if request.status == "issued":
                amount = f"{request.amount_cents / 100:.2f} {request.currency.upper()}"
                return f"REFUND_ISSUED: {amount} for order {order_id}"
            return f"The refund could not be completed (status: {request.status})."
