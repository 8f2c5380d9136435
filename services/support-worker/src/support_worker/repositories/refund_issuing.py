"""Issuing an approved refund: hold the amount on the order, record the provider's outcome,
or end the request blocked. Every write is a conditional UPDATE, so a request ends exactly once
and two requests never refund one order beyond what it has left."""

from __future__ import annotations

from typing import Any

from service_kit.audit import AuditAction
from service_kit.models import Order, RefundRequest, utcnow
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from .base import ACTOR, AuditContext, NotFound, RepositoryBase
from .refund_records import (
    OPEN_STATUSES,
    RESERVED_STATUSES,
    RefundNotHeld,
    RefundReservation,
    changed_a_row,
    refund_record,
)


class RefundIssuingRepository(RepositoryBase):
    """Hold the amount on the order, record the provider's outcome, or end a request blocked."""

    async def reserve_refund(self, request_id: str, *, ctx: AuditContext) -> RefundReservation:
        """Hold an approved request's amount on its order, or block the request when the order
        has less than that left to refund. One transaction, so a request ends exactly once.

        The hold is a conditional UPDATE (`refunded_cents + amount <= amount_cents`): on Postgres
        a concurrent hold waits for the row lock and then re-checks the condition; on SQLite
        every transaction is `BEGIN IMMEDIATE`, so writers take turns. A retry of the step finds
        the request `issuing` (or `issued`) and re-uses the hold it already has."""
        async with self.db.transaction() as session:
            claimed = await changed_a_row(
                session,
                update(RefundRequest)
                .where(RefundRequest.id == request_id, RefundRequest.status == "approved")
                .values(status="issuing", updated_at=utcnow()),
            )
            request = await session.get(RefundRequest, request_id, populate_existing=True)
            if request is None:
                raise NotFound(f"refund request {request_id} does not exist")
            if claimed:
                held = await changed_a_row(
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
                request=refund_record(request, order),
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
            marked = await changed_a_row(
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
            released = await changed_a_row(
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
