"""Events sent by hand in the course's shapes: an email with its text inline, and a refund decision
that names a customer instead of a request. Both are turned into what the regular flows use: an
inbound message row (claim check) and a stored decision (like the gateway's decision links)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service_kit.audit import AuditAction
from service_kit.ids import new_id
from service_kit.models import Approval, Customer, Message, RefundRequest, Ticket, utcnow
from sqlalchemy import select, update

from .base import AuditContext, NotFound, RepositoryBase, insert_ignoring_duplicates

# Waiting for a human: the gate asked (awaiting_approval) or is about to (pending).
DECIDABLE_STATUSES = ("pending", "awaiting_approval")


@dataclass(frozen=True)
class StoredInlineEmail:
    message_id: str
    ticket_id: str
    customer_id: str
    customer_tier: str
    received_at: datetime


class UnmatchedDecision(LookupError):
    """A hand-sent decision that names no single decidable request (not retryable)."""


class HandSentRepository(RepositoryBase):
    async def store_inline_email(
        self, *, key: str, customer_id: str, subject: str, body: str
    ) -> StoredInlineEmail:
        """Store a hand-sent email as an inbound message on a new ticket, once per `key` (the
        event id): `provider_message_id = key` is unique, so a retry finds the first row."""
        async with self.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise NotFound(f"customer {customer_id} does not exist")
            existing = (
                await session.scalars(select(Message).where(Message.provider_message_id == key))
            ).first()
            if existing is None:
                now = utcnow()
                ticket_id = new_id("tkt")
                session.add(
                    Ticket(
                        id=ticket_id,
                        customer_id=customer_id,
                        subject=subject,
                        channel="email",
                        thread_key=key,
                    )
                )
                await session.flush()
                await session.execute(
                    insert_ignoring_duplicates(
                        session,
                        Message,
                        {
                            "id": new_id("msg"),
                            "ticket_id": ticket_id,
                            "customer_id": customer_id,
                            "direction": "inbound",
                            "channel": "email",
                            "provider": "event",
                            "provider_message_id": key,
                            "from_address": customer.email,
                            "to_address": "support@nerve.dev",
                            "subject": subject,
                            "body_text": body,
                            "extra": {},
                            "received_at": now,
                            "created_at": now,
                        },
                        ["provider_message_id"],
                    )
                )
                existing = (
                    await session.scalars(select(Message).where(Message.provider_message_id == key))
                ).one()
            return StoredInlineEmail(
                message_id=existing.id,
                ticket_id=str(existing.ticket_id),
                customer_id=customer_id,
                customer_tier=customer.tier,
                received_at=existing.received_at or existing.created_at,
            )

    async def find_decidable_refund(
        self, *, request_id: str | None, customer_id: str | None
    ) -> tuple[str, str]:
        """(request id, customer id) of the refund a hand-sent decision means: the one it names,
        else the customer's single one waiting for a decision. UnmatchedDecision otherwise."""
        async with self.db.session() as session:
            query = select(RefundRequest).where(RefundRequest.status.in_(DECIDABLE_STATUSES))
            if request_id:
                query = query.where(RefundRequest.id == request_id)
            if customer_id:
                query = query.where(RefundRequest.customer_id == customer_id)
            found = (await session.scalars(query.order_by(RefundRequest.created_at))).all()
        if len(found) == 1:
            return found[0].id, found[0].customer_id
        if request_id:
            whose = f" of customer {customer_id}" if customer_id else ""
            raise UnmatchedDecision(
                f"refund request {request_id}{whose} is not waiting for a decision"
            )
        if not found:
            raise UnmatchedDecision(f"customer {customer_id} has no refund waiting for a decision")
        ids = ", ".join(r.id for r in found)
        raise UnmatchedDecision(
            f"customer {customer_id} has {len(found)} refunds waiting for a decision ({ids}); "
            "name one with request_id"
        )

    async def store_hand_sent_decision(
        self, *, key: str, request_id: str, approved: bool, reviewer: str
    ) -> str | None:
        """Decide the request as the gateway does, in one transaction: move it out of its
        waiting status with a conditional UPDATE (so a decision never lands on a request that
        timed out, was cancelled or was decided by someone else), then store the decision in
        `approvals` (`key`, the event id, is the single-use token). Returns the approval id (the
        same one on a retry), or None when the request was no longer waiting."""
        async with self.db.transaction() as session:
            mine = (await session.scalars(select(Approval).where(Approval.token_id == key))).first()
            if mine is not None:  # a retry of this step: already stored
                return mine.id if mine.request_id == request_id else None
            now = utcnow()
            result = await session.execute(
                update(RefundRequest)
                .where(
                    RefundRequest.id == request_id,
                    RefundRequest.status.in_(DECIDABLE_STATUSES),
                )
                .values(
                    status="approved" if approved else "rejected",
                    decided_by=reviewer,
                    decided_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            approval_id = new_id("apr")
            session.add(
                Approval(
                    id=approval_id,
                    kind="refund",
                    request_id=request_id,
                    decision="approve" if approved else "reject",
                    reviewer=reviewer,
                    edited_text=None,
                    token_id=key,
                    decided_at=now,
                    created_at=now,
                )
            )
            return approval_id

    async def audit_unmatched_decision(
        self, *, key: str, customer_id: str | None, reason: str, ctx: AuditContext
    ) -> bool:
        return await self.audit(
            AuditAction.REFUND_DECISION_UNMATCHED,
            key=f"refund-decision-unmatched-{key}",
            ctx=ctx,
            customer_id=customer_id,
            payload={"event_id": key, "reason": reason[:300]},
        )
