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
from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .base import ACTOR, AuditContext, NotFound, RepositoryBase, insert_ignoring_duplicates

# A request still waiting for a decision; `approved` is the only one that may be held.
OPEN_STATUSES = ("pending", "awaiting_approval", "approved")
# The amount is held on the order: being issued, or issued.
RESERVED_STATUSES = ("issuing", "issued")


class RefundNotHeld(RuntimeError):
    """Recording an issued refund for a request whose amount is not held on its order."""


async def _changed(session: AsyncSession, statement: Update) -> bool:
    """Run a conditional UPDATE; True when it changed a row."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefundRecord:
    request_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    charge_id: str | None
    provider_refund_id: str | None


@dataclass(frozen=True)
class RefundReservation:
    """What holding a refund on its order came to (see `reserve_refund`)."""

    reserved: bool  # the amount is held on the order (request `issuing` or `issued`)
    request: RefundRecord
    order_amount_cents: int
    refunded_cents: int  # held + issued on the order after this attempt


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
            existing = (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.idempotency_key == key)
                )
            ).first()
            if existing is not None:
                # A rerun: the request (maybe holding or having refunded the whole order) is the
                # same one, whatever is left to refund now.
                return self._refund_record(existing, order)
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

    async def close_refund_wait(self, request_id: str) -> tuple[str, str] | None:
        """The wait for a reviewer ended without an event: time the request out, unless a
        reviewer decided it first. One conditional UPDATE settles the race with the gateway
        (which moves the row out of the waiting statuses in the transaction that stores the
        decision): returns the stored `(decision, reviewer)` when the reviewer won, None when
        the request is now `timed_out` (or ended otherwise, e.g. cancelled)."""
        async with self.db.transaction() as session:
            timed_out = await _changed(
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
                changed = await _changed(
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

    # -- issuing: hold the amount on the order, call the provider, then record the outcome ------

    async def reserve_refund(self, request_id: str, *, ctx: AuditContext) -> RefundReservation:
        """Hold an approved request's amount on its order, or block the request when the order
        has less than that left to refund. One transaction, so a request ends exactly once.

        The hold is a conditional UPDATE (`refunded_cents + amount <= amount_cents`): on Postgres
        a concurrent hold waits for the row lock and then re-checks the condition; on SQLite
        every transaction is `BEGIN IMMEDIATE`, so writers take turns. A retry of the step finds
        the request `issuing` (or `issued`) and re-uses the hold it already has."""
        async with self.db.transaction() as session:
            claimed = await _changed(
                session,
                update(RefundRequest)
                .where(RefundRequest.id == request_id, RefundRequest.status == "approved")
                .values(status="issuing", updated_at=utcnow()),
            )
            request = await session.get(RefundRequest, request_id, populate_existing=True)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if claimed:
                held = await _changed(
                    session,
                    update(Order)
                    .where(
                        Order.id == request.order_id,
                        Order.customer_id == request.customer_id,
                        Order.refunded_cents + request.amount_cents <= Order.amount_cents,
                    )
                    .values(
                        refunded_cents=Order.refunded_cents + request.amount_cents,
                        updated_at=utcnow(),
                    ),
                )
                if not held:
                    await self._block_over_refund(session, request, ctx)
            order = await session.get(Order, request.order_id, populate_existing=True)
            return RefundReservation(
                reserved=request.status in RESERVED_STATUSES,
                request=self._refund_record(request, order),
                order_amount_cents=order.amount_cents if order else 0,
                refunded_cents=order.refunded_cents if order else 0,
            )

    async def _block_over_refund(
        self, session: AsyncSession, request: RefundRequest, ctx: AuditContext
    ) -> None:
        order = await session.get(Order, request.order_id, populate_existing=True)
        paid, refunded = (order.amount_cents, order.refunded_cents) if order else (0, 0)
        reason = (
            f"order {request.order_id} has {max(paid - refunded, 0)} of {paid} cents left to "
            f"refund; this request asks for {request.amount_cents}"
        )
        request.status = "exceeds_refundable"
        request.failure_reason = reason[:500]
        await self._audit_refund_blocked(
            session,
            request,
            ctx,
            reason=reason,
            amount_cents=request.amount_cents,
            order_amount_cents=paid,
            refunded_cents=refunded,
        )

    async def _audit_refund_blocked(
        self,
        session: AsyncSession,
        request: RefundRequest,
        ctx: AuditContext,
        *,
        actor: str = ACTOR,
        **details: Any,
    ) -> bool:
        """The one `refund_blocked` row of a request (natural key: the request id); the outcome
        is the request's final status."""
        return await self._audit(
            session,
            AuditAction.REFUND_BLOCKED,
            key=f"refund-blocked-{request.id}",
            ctx=ctx,
            customer_id=request.customer_id,
            ticket_id=request.ticket_id,
            actor=actor,
            payload={
                "request_id": request.id,
                "order_id": request.order_id,
                "outcome": request.status,
                **details,
            },
        )

    async def mark_refund_issued(
        self, request_id: str, *, provider_refund_id: str, ctx: AuditContext
    ) -> bool:
        """Record the issued refund of a held request once and audit `refund_issued` once."""
        async with self.db.transaction() as session:
            marked = await _changed(
                session,
                update(RefundRequest)
                .where(RefundRequest.id == request_id, RefundRequest.status == "issuing")
                .values(
                    status="issued",
                    provider_refund_id=provider_refund_id,
                    issued_at=utcnow(),
                    updated_at=utcnow(),
                ),
            )
            request = await session.get(RefundRequest, request_id, populate_existing=True)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if request.status != "issued":
                raise RefundNotHeld(f"refund request {request_id} is {request.status}, not held")
            if marked:
                order = await session.get(Order, request.order_id, populate_existing=True)
                if order is not None:
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
                    "provider_refund_id": request.provider_refund_id,
                },
            )

    async def release_refund(
        self, request_id: str, *, error: str, decided_by: str, ctx: AuditContext
    ) -> bool:
        """The provider refused a held refund: give the amount back to the order, mark the
        request `failed` and audit `refund_blocked`, once."""
        async with self.db.transaction() as session:
            released = await _changed(
                session,
                update(RefundRequest)
                .where(RefundRequest.id == request_id, RefundRequest.status == "issuing")
                .values(status="failed", failure_reason=error[:500], updated_at=utcnow()),
            )
            request = await session.get(RefundRequest, request_id, populate_existing=True)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if released:
                await session.execute(
                    update(Order)
                    .where(Order.id == request.order_id)
                    .values(
                        refunded_cents=Order.refunded_cents - request.amount_cents,
                        updated_at=utcnow(),
                    )
                )
            if request.status != "failed":
                return False
            return await self._audit_refund_blocked(
                session,
                request,
                ctx,
                actor=decided_by,
                reason=(request.failure_reason or "")[:200],
            )

    async def mark_refund_blocked(
        self, request_id: str, *, outcome: str, decided_by: str, ctx: AuditContext
    ) -> bool:
        """End a request that was never held (rejected / timed out) and audit `refund_blocked`
        once; a request that already ended otherwise (e.g. issued) is left alone."""
        async with self.db.transaction() as session:
            request = await session.get(RefundRequest, request_id)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if request.status in OPEN_STATUSES:
                request.status = outcome
                request.decided_by = request.decided_by or decided_by
                request.decided_at = request.decided_at or utcnow()
            if request.status != outcome:
                return False
            return await self._audit_refund_blocked(session, request, ctx, actor=decided_by)

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
