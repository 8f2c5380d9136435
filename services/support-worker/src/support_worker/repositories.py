"""System-of-record access for the support worker (domain code: never imports inngest).

Every write has a natural idempotency key (unique column + INSERT ... ON CONFLICT DO NOTHING, or a
status-guarded UPDATE), so a retried step, a re-delivered event or a rerun from the top never
writes a second row for one logical action. Methods open their own transaction and return small
records (ids and short summaries); email bodies never leave this module except toward the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from service_kit.audit import AuditAction, record_audit
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import (
    Approval,
    Customer,
    Draft,
    Escalation,
    Message,
    Order,
    RefundRequest,
    Ticket,
    utcnow,
)
from sqlalchemy import Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .agent import CustomerProfile, EmailForAgent, OrderSummary

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


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: str
    tier: str
    order_count: int


@dataclass(frozen=True)
class RefundRecord:
    request_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    charge_id: str | None
    provider_refund_id: str | None


class SupportRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    # -- customers and threads ----------------------------------------------------------------

    async def load_customer(self, customer_id: str) -> CustomerRecord:
        async with self.db.session() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise NotFound(f"customer {customer_id} does not exist")
            orders = (
                await session.scalars(select(Order.id).where(Order.customer_id == customer_id))
            ).all()
            return CustomerRecord(customer.id, customer.tier, len(orders))

    async def customer_profile(self, customer_id: str) -> CustomerProfile:
        async with self.db.session() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise NotFound(f"customer {customer_id} does not exist")
            orders = (
                await session.scalars(
                    select(Order).where(Order.customer_id == customer_id).order_by(Order.id)
                )
            ).all()
            return CustomerProfile(
                customer_id=customer.id,
                name=customer.name,
                tier=customer.tier,
                orders=[
                    OrderSummary(
                        order_id=order.id,
                        amount_cents=order.amount_cents,
                        currency=order.currency,
                        status=order.status,
                    )
                    for order in orders
                ],
            )

    async def thread_message_ids(self, ticket_id: str, before_message_id: str) -> list[str]:
        """Ids of the ticket's earlier messages (oldest first), excluding the new one."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Message.id)
                .where(Message.ticket_id == ticket_id, Message.id != before_message_id)
                .order_by(Message.created_at)
            )
            return list(rows.all())

    async def email_for_agent(
        self, message_id: str, thread_ids: list[str], *, customer_id: str, ticket_id: str
    ) -> EmailForAgent:
        async with self.db.session() as session:
            message = await session.get(Message, message_id)
            if message is None:
                raise NotFound(f"message {message_id} does not exist")
            earlier: list[str] = []
            if thread_ids:
                rows = await session.scalars(
                    select(Message).where(Message.id.in_(thread_ids)).order_by(Message.created_at)
                )
                for row in rows.all():
                    who = "Customer" if row.direction == "inbound" else "Support"
                    earlier.append(f"{who}: {row.body_text[:500]}")
            return EmailForAgent(
                customer_id=customer_id,
                ticket_id=ticket_id,
                subject=message.subject,
                body=message.body_text,
                thread=tuple(earlier[-5:]),
            )

    # -- drafts (also the claim check for the agent's reply and paused state) -----------------

    async def store_agent_result(
        self,
        *,
        key: str,
        kind: str,
        customer_id: str,
        ticket_id: str | None,
        message_id: str | None,
        subject: str,
        reply: str | None,
        agent_state: str | None,
        extra: dict[str, Any],
        run_id: str | None,
    ) -> str:
        """Upsert the draft named `key` with the agent's latest output; returns the draft id.

        A paused run's serialized state is kept in `extra.agent_state` (it holds the email text,
        so it never travels in a step output); a finished run's reply goes to `body_text`.
        """
        async with self.db.transaction() as session:
            values: dict[str, Any] = {
                "id": new_id("drf"),
                "idempotency_key": key,
                "kind": kind,
                "status": "draft",
                "customer_id": customer_id,
                "ticket_id": ticket_id,
                "message_id": message_id,
                "subject": subject[:300],
                "run_id": run_id,
                "extra": {},
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            await session.execute(
                insert_ignoring_duplicates(session, Draft, values, ["idempotency_key"])
            )
            draft = (await session.scalars(select(Draft).where(Draft.idempotency_key == key))).one()
            if draft.status in ("sent", "discarded"):
                return draft.id  # already delivered: a replay must not rewrite history
            merged = dict(draft.extra or {})
            merged.update(extra)
            merged["agent_state"] = agent_state
            draft.extra = merged
            if reply is not None:
                draft.body_text = reply
            draft.run_id = run_id
            draft.updated_at = utcnow()
            return draft.id

    async def agent_state(self, draft_id: str) -> str:
        async with self.db.session() as session:
            draft = await session.get(Draft, draft_id)
            state = (draft.extra or {}).get("agent_state") if draft else None
            if not state:
                raise NotFound(f"draft {draft_id} holds no paused agent state")
            return str(state)

    async def draft_status(self, draft_id: str) -> str | None:
        async with self.db.session() as session:
            draft = await session.get(Draft, draft_id)
            return draft.status if draft else None

    async def draft_text(self, draft_id: str) -> str:
        async with self.db.session() as session:
            draft = await session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"draft {draft_id} does not exist")
            return draft.body_text

    async def save_draft(
        self, draft_id: str, *, status: str, audit_key: str, ctx: AuditContext
    ) -> bool:
        """Finalise a draft (clear the paused state) and audit `draft_saved` once."""
        async with self.db.transaction() as session:
            draft = await session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"draft {draft_id} does not exist")
            if draft.status == "draft":
                draft.status = status
                extra = dict(draft.extra or {})
                extra.pop("agent_state", None)
                draft.extra = extra
            return await self._audit(
                session,
                AuditAction.DRAFT_SAVED,
                key=audit_key,
                ctx=ctx,
                customer_id=draft.customer_id,
                ticket_id=draft.ticket_id,
                payload={"draft_id": draft.id, "kind": draft.kind},
            )

    async def post_draft(
        self,
        draft_id: str,
        *,
        audit_key: str,
        ctx: AuditContext,
        text: str | None = None,
        header: str | None = None,
    ) -> str:
        """Record the outbound reply for a draft once (message row keyed by the draft) and audit
        `message_sent`. Returns the outbound message id."""
        async with self.db.transaction() as session:
            draft = await session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"draft {draft_id} does not exist")
            body = text if text is not None else draft.body_text
            if header:
                body = f"{header}\n\n{body}"
            provider_key = f"nerve-draft-{draft.id}"
            values: dict[str, Any] = {
                "id": new_id("msg"),
                "ticket_id": draft.ticket_id,
                "customer_id": draft.customer_id,
                "direction": "outbound",
                "channel": "email",
                "provider": "nerve",
                "provider_message_id": provider_key,
                "subject": draft.subject,
                "body_text": body,
                "draft_id": draft.id,
                "extra": {},
                "sent_at": utcnow(),
                "created_at": utcnow(),
            }
            await session.execute(
                insert_ignoring_duplicates(session, Message, values, ["provider_message_id"])
            )
            message_id = (
                await session.scalars(
                    select(Message.id).where(Message.provider_message_id == provider_key)
                )
            ).one()
            draft.status = "sent"
            draft.sent_message_id = message_id
            draft.sent_at = draft.sent_at or utcnow()
            await self._audit(
                session,
                AuditAction.MESSAGE_SENT,
                key=audit_key,
                ctx=ctx,
                customer_id=draft.customer_id,
                ticket_id=draft.ticket_id,
                payload={"draft_id": draft.id, "message_id": message_id},
            )
            return message_id

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
    ) -> bool:
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
            return await self._audit(
                session,
                action,
                key=f"escalation-{outcome}-{escalation_id}",
                ctx=ctx,
                customer_id=escalation.customer_id,
                ticket_id=escalation.ticket_id,
                actor=reviewer,
                payload={"escalation_id": escalation_id, "reviewer": reviewer},
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

    # -- tickets ------------------------------------------------------------------------------

    async def close_ticket(self, ticket_id: str, *, ctx: AuditContext) -> bool:
        async with self.db.transaction() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                raise NotFound(f"ticket {ticket_id} does not exist")
            if ticket.status != "closed":
                ticket.status = "closed"
                ticket.closed_at = utcnow()
                ticket.resolved_by = ticket.resolved_by or ACTOR
                ticket.resolved_at = ticket.resolved_at or utcnow()
            return await self._audit(
                session,
                AuditAction.TICKET_CLOSED,
                key=f"ticket-closed-{ticket_id}",
                ctx=ctx,
                customer_id=ticket.customer_id,
                ticket_id=ticket_id,
                payload={"ticket_id": ticket_id},
            )

    async def latest_inbound_at(self, customer_id: str) -> datetime | None:
        async with self.db.session() as session:
            return (
                await session.scalars(
                    select(Message.created_at)
                    .where(Message.customer_id == customer_id, Message.direction == "inbound")
                    .order_by(Message.created_at.desc())
                )
            ).first()


def iso_week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())
