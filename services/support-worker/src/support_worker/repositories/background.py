"""System-of-record access for the outreach the background flows draft: health checks, follow-ups
and failed refunds (domain code: never imports inngest). Embeddings: `ticket_embeddings.py`;
weekly metrics: `weekly_metrics.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service_kit.audit import AuditAction
from service_kit.ids import new_id
from service_kit.models import (
    Customer,
    Draft,
    Message,
    Order,
    RefundRequest,
    Ticket,
    utcnow,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .base import AuditContext, NotFound, RepositoryBase, day_start, insert_ignoring_duplicates


@dataclass(frozen=True)
class DraftRef:
    draft_id: str
    customer_id: str
    ticket_id: str | None


class BackgroundRepository(RepositoryBase):
    """Proactive outreach, feedback requests and failed-refund follow-ups, once each."""

    # -- health checks ------------------------------------------------------------------------

    async def eligible_for_health_check(self, today: date) -> list[tuple[str, str]]:
        """(customer_id, tier) of Pro/Enterprise customers without proactive outreach in the
        7 days before `today`."""
        since = day_start(today) - timedelta(days=7)
        async with self.db.session() as session:
            recent = select(Draft.customer_id).where(
                Draft.kind == "proactive", Draft.created_at >= since
            )
            rows = await session.execute(
                select(Customer.id, Customer.tier)
                .where(Customer.tier.in_(("pro", "enterprise")), Customer.id.not_in(recent))
                .order_by(Customer.id)
            )
            return [(row[0], row[1]) for row in rows.all()]

    async def draft_proactive_outreach(
        self, customer_id: str, check_date: date, *, ctx: AuditContext
    ) -> DraftRef:
        """One proactive draft per customer per day (key `proactive-{customer}-{date}`)."""
        key = f"proactive-{customer_id}-{check_date.isoformat()}"
        async with self.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise NotFound(f"customer {customer_id} does not exist")
            since = day_start(check_date) - timedelta(days=30)
            open_tickets = await _count(
                session,
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.customer_id == customer_id, Ticket.status.in_(("open", "pending"))),
            )
            refunds = await _count(
                session,
                select(func.count())
                .select_from(RefundRequest)
                .where(RefundRequest.customer_id == customer_id, RefundRequest.created_at >= since),
            )
            body = proactive_message(customer.name, customer.tier, open_tickets, refunds)
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Draft,
                    {
                        "id": new_id("drf"),
                        "idempotency_key": key,
                        "kind": "proactive",
                        "status": "pending_review",
                        "customer_id": customer_id,
                        "subject": "Checking in on your account",
                        "body_text": body,
                        "extra": {"open_tickets": open_tickets, "recent_refunds": refunds},
                        "run_id": ctx.run_id,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    },
                    ["idempotency_key"],
                )
            )
            draft_id = (
                await session.scalars(select(Draft.id).where(Draft.idempotency_key == key))
            ).one()
            await self._audit(
                session,
                AuditAction.PROACTIVE_OUTREACH_DRAFTED,
                key=key,
                ctx=ctx,
                customer_id=customer_id,
                payload={"draft_id": draft_id, "open_tickets": open_tickets, "refunds": refunds},
            )
            return DraftRef(draft_id, customer_id, None)

    # -- follow-ups ---------------------------------------------------------------------------

    async def send_feedback_request(self, draft_id: str, *, ctx: AuditContext) -> str | None:
        """Close the answered ticket's loop: one feedback-request message per replied draft
        (`follow-up-{draft_id}`), audited `follow_up_sent`. Returns the message id."""
        key = f"follow-up-{draft_id}"
        async with self.db.transaction() as session:
            draft = await session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"draft {draft_id} does not exist")
            customer = await session.get(Customer, draft.customer_id)
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Message,
                    {
                        "id": new_id("msg"),
                        "ticket_id": draft.ticket_id,
                        "customer_id": draft.customer_id,
                        "direction": "outbound",
                        "channel": "email",
                        "provider": "nerve",
                        "provider_message_id": f"nerve-{key}",
                        "from_address": self.support_address,
                        "to_address": customer.email if customer else "",
                        "subject": f"How did we do? {draft.subject}"[:300],
                        "body_text": FEEDBACK_REQUEST,
                        "extra": {"kind": "feedback_request"},
                        "sent_at": utcnow(),
                        "created_at": utcnow(),
                    },
                    ["provider_message_id"],
                )
            )
            message_id = (
                await session.scalars(
                    select(Message.id).where(Message.provider_message_id == f"nerve-{key}")
                )
            ).one()
            await self._audit(
                session,
                AuditAction.FOLLOW_UP_SENT,
                key=key,
                ctx=ctx,
                customer_id=draft.customer_id,
                ticket_id=draft.ticket_id,
                payload={"draft_id": draft_id, "message_id": message_id},
            )
            return message_id

    # -- failed refunds -----------------------------------------------------------------------

    async def draft_refund_failed_follow_up(
        self,
        *,
        stripe_event_id: str,
        charge_id: str,
        refund_id: str,
        failure_reason: str | None,
        run_id: str | None,
    ) -> DraftRef | None:
        """Find the ticket behind a failed refund and draft a follow-up once per Stripe event.
        None when no refund request or order matches the charge."""
        async with self.db.transaction() as session:
            request = (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.provider_refund_id == refund_id)
                )
            ).first()
            if request is None:
                request = (
                    await session.scalars(
                        select(RefundRequest)
                        .join(Order, Order.id == RefundRequest.order_id)
                        .where(Order.stripe_charge_id == charge_id)
                        .order_by(RefundRequest.created_at.desc())
                    )
                ).first()
            if request is None:
                return None
            if request.status != "failed":
                request.status = "failed"
                request.failure_reason = (failure_reason or "refund failed at the provider")[:500]
            customer = await session.get(Customer, request.customer_id)
            name = customer.name.split(" ")[0] if customer else "there"
            key = f"refund-failed-{stripe_event_id}"
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Draft,
                    {
                        "id": new_id("drf"),
                        "idempotency_key": key,
                        "kind": "refund_failed",
                        "status": "pending_review",
                        "customer_id": request.customer_id,
                        "ticket_id": request.ticket_id,
                        "message_id": request.message_id,
                        "subject": "About your refund",
                        "body_text": refund_failed_message(
                            name, request.amount_cents, request.currency
                        ),
                        "extra": {"refund_request_id": request.id, "refund_id": refund_id},
                        "run_id": run_id,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    },
                    ["idempotency_key"],
                )
            )
            draft_id = (
                await session.scalars(select(Draft.id).where(Draft.idempotency_key == key))
            ).one()
            # Keyed by the draft (itself one per Stripe event), like every draft_saved row.
            await self._audit(
                session,
                AuditAction.DRAFT_SAVED,
                key=f"draft-saved-{draft_id}",
                ctx=AuditContext(run_id=run_id, function_id="handle-refund-failed"),
                customer_id=request.customer_id,
                ticket_id=request.ticket_id,
                payload={
                    "draft_id": draft_id,
                    "kind": "refund_failed",
                    "refund_request_id": request.id,
                    "stripe_event_id": stripe_event_id,
                },
            )
            return DraftRef(draft_id, request.customer_id, request.ticket_id)


async def _count(session: AsyncSession, query: Any) -> int:
    return int((await session.execute(query)).scalar_one())


FEEDBACK_REQUEST = (
    "Hi,\n\nWe hope your issue is resolved. We have closed this ticket; if anything is still "
    "open, just reply and it will reopen. How did we do? A one-line answer helps us a lot.\n\n"
    "Nerve Support"
)


def proactive_message(name: str, tier: str, open_tickets: int, recent_refunds: int) -> str:
    first = name.split(" ")[0]
    lines = [f"Hi {first},", "", f"As one of our {tier} customers, we wanted to check in."]
    if open_tickets:
        lines.append(f"You have {open_tickets} open request(s) with us; we are on them.")
    if recent_refunds:
        lines.append("We saw a recent refund on your account. Is everything working for you now?")
    if not open_tickets and not recent_refunds:
        lines.append("Is there anything we can help you get more out of this month?")
    lines += ["", "Best regards,", "Nerve Support"]
    return "\n".join(lines)


def refund_failed_message(name: str, amount_cents: int, currency: str) -> str:
    amount = f"{amount_cents / 100:.2f} {currency.upper()}"
    return (
        f"Hi {name},\n\nWe tried to refund {amount} to your card, but the payment provider "
        "declined it. We are looking into it and will get back to you with another way to return "
        "your money.\n\nBest regards,\nNerve Support"
    )
