"""Customers, threads, drafts and tickets: the conversation side of the system of record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service_kit.audit import AuditAction
from service_kit.ids import new_id
from service_kit.models import (
    Customer,
    Draft,
    Message,
    Order,
    Ticket,
    utcnow,
)
from sqlalchemy import select

from ..agent import CustomerProfile, EmailForAgent, OrderSummary
from .base import ACTOR, AuditContext, NotFound, RepositoryBase, insert_ignoring_duplicates


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: str
    tier: str
    order_count: int


class ConversationRepository(RepositoryBase):
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

    async def thread_message_ids(
        self, ticket_id: str, before_message_id: str, *, customer_id: str
    ) -> list[str]:
        """Ids of the ticket's earlier messages (oldest first), excluding the new one; only when
        the ticket and the messages are the customer's own (an event naming another customer's
        ticket loads nothing of that conversation)."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Message.id)
                .join(Ticket, Ticket.id == Message.ticket_id)
                .where(
                    Message.ticket_id == ticket_id,
                    Message.id != before_message_id,
                    Message.customer_id == customer_id,
                    Ticket.customer_id == customer_id,
                )
                .order_by(Message.created_at)
            )
            return list(rows.all())

    async def email_for_agent(
        self, message_id: str, thread_ids: list[str], *, customer_id: str, ticket_id: str
    ) -> EmailForAgent:
        async with self.db.session() as session:
            message = await session.get(Message, message_id)
            if message is None or message.customer_id != customer_id:
                raise NotFound(f"message {message_id} of customer {customer_id} does not exist")
            earlier: list[str] = []
            if thread_ids:
                rows = await session.scalars(
                    select(Message)
                    .where(Message.id.in_(thread_ids), Message.customer_id == customer_id)
                    .order_by(Message.created_at)
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
            customer = await session.get(Customer, draft.customer_id)
            values: dict[str, Any] = {
                "id": new_id("msg"),
                "ticket_id": draft.ticket_id,
                "customer_id": draft.customer_id,
                "direction": "outbound",
                "channel": "email",
                "provider": "nerve",
                "provider_message_id": provider_key,
                "from_address": self.support_address,
                "to_address": customer.email if customer else "",
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
