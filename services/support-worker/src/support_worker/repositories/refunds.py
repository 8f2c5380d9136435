"""Refund requests, their risk and decisions (issuing them: `refund_issuing.py`)."""

from __future__ import annotations

from typing import Any

from service_kit.audit import AuditAction
from service_kit.ids import new_id
from service_kit.models import Approval, Order, RefundRequest, utcnow
from sqlalchemy import select, update

from .base import AuditContext, NotFound, insert_ignoring_duplicates
from .refund_issuing import RefundIssuingRepository
from .refund_records import OPEN_STATUSES, RefundRecord, changed_a_row, refund_record


class RefundRepository(RefundIssuingRepository):
    """Refund requests from creation to decision, and issuing them (the base class)."""

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
            existing = (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.idempotency_key == key)
                )
            ).first()
            if existing is not None:
                # A rerun: the request (maybe holding or having refunded the whole order) is the
                # same one, whatever is left to refund now.
                return refund_record(existing, order)
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
            return refund_record(request, order)

    async def refund(self, request_id: str) -> RefundRecord:
        async with self.db.session() as session:
            request = await session.get(RefundRequest, request_id)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            order = await session.get(Order, request.order_id)
            return refund_record(request, order)

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

    async def close_refund_wait(self, request_id: str) -> tuple[str, str] | None:
        """The wait for a reviewer ended without an event: time the request out, unless a
        reviewer decided it first. One conditional UPDATE settles the race with the gateway
        (which moves the row out of the waiting statuses in the transaction that stores the
        decision): returns the stored `(decision, reviewer)` when the reviewer won, None when
        the request is now `timed_out` (or ended otherwise, e.g. cancelled)."""
        async with self.db.transaction() as session:
            timed_out = await changed_a_row(
                session,
                update(RefundRequest)
                .where(
                    RefundRequest.id == request_id,
                    RefundRequest.status.in_(("pending", "awaiting_approval")),
                )
                .values(
                    status="timed_out",
                    decided_by="timeout",
                    decided_at=utcnow(),
                    updated_at=utcnow(),
                ),
            )
            if timed_out:
                return None
            approval = (
                await session.scalars(
                    select(Approval).where(
                        Approval.kind == "refund", Approval.request_id == request_id
                    )
                )
            ).first()
            return (approval.decision, approval.reviewer) if approval else None

    async def cancel_waiting_refunds(
        self, message_id: str, *, run_id: str, function_id: str
    ) -> list[str]:
        """The run handling `message_id` was cancelled: its refund requests that were still
        waiting (for a score, a reviewer, or to be issued) end `cancelled`, audited once each.
        A request whose amount is already held (`issuing`) or that ended is left alone."""
        ctx = AuditContext(run_id=run_id, function_id=function_id)
        cancelled: list[str] = []
        async with self.db.transaction() as session:
            requests = (
                await session.scalars(
                    select(RefundRequest).where(
                        RefundRequest.message_id == message_id,
                        RefundRequest.status.in_(OPEN_STATUSES),
                    )
                )
            ).all()
            for request in requests:
                changed = await changed_a_row(
                    session,
                    update(RefundRequest)
                    .where(
                        RefundRequest.id == request.id,
                        RefundRequest.status.in_(OPEN_STATUSES),
                    )
                    .values(status="cancelled", updated_at=utcnow()),
                )
                if not changed:
                    continue
                cancelled.append(request.id)
                await self._audit(
                    session,
                    AuditAction.REFUND_CANCELLED,
                    key=f"refund-cancelled-{request.id}",
                    ctx=ctx,
                    customer_id=request.customer_id,
                    ticket_id=request.ticket_id,
                    payload={
                        "request_id": request.id,
                        "order_id": request.order_id,
                        "cancelled_run_id": run_id,
                    },
                )
        return cancelled

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
