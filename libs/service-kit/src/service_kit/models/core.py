"""Customers, their orders, support tickets, messages and draft replies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_at_column, id_column, updated_at_column

Tier = Literal["enterprise", "pro", "standard"]
TicketStatus = Literal["open", "pending", "resolved", "closed"]
MessageDirection = Literal["inbound", "outbound"]
DraftKind = Literal["reply", "proactive", "follow_up", "refund_failed", "escalation"]
DraftStatus = Literal["draft", "pending_review", "approved", "sent", "discarded"]
OrderStatus = Literal["paid", "refunded", "partially_refunded", "disputed"]


class Customer(Base):
    """A customer account. `tier` drives run priority and health-check eligibility."""

    __tablename__ = "customers"
    __table_args__ = (CheckConstraint("tier IN ('enterprise', 'pro', 'standard')", name="tier"),)

    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(20), default="standard")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Order(Base):
    """A paid order; refunds point at it. Amounts are integer minor units (cents).

    `refunded_cents` counts refunds issued and refunds being issued (held before the provider is
    called), so it never exceeds what was paid: the refund gate adds to it with a conditional
    UPDATE, and the CHECK below is the last line of defence."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("amount_cents >= 0", name="amount_non_negative"),
        CheckConstraint(
            "refunded_cents >= 0 AND refunded_cents <= amount_cents", name="refunded_within_amount"
        ),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    status: Mapped[str] = mapped_column(String(20), default="paid")
    stripe_charge_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Ticket(Base):
    """A support conversation with one customer; messages and drafts hang off it."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_customer_status", "customer_id", "status"),
        # A thread key is the customer's own: a reply naming another customer's thread (a forged
        # References / In-Reply-To) opens a ticket of the sender instead of joining that thread.
        UniqueConstraint("customer_id", "thread_key"),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    subject: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    channel: Mapped[str] = mapped_column(String(20), default="email")
    # The provider thread key (e.g. the root Message-ID), so replies land on the same ticket;
    # unique per customer (see __table_args__).
    thread_key: Mapped[str | None] = mapped_column(String(300))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Message(Base):
    """An email in or out. The body lives here (claim check): events only carry `id`."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        Index("ix_messages_ticket_created", "ticket_id", "created_at"),
    )

    id: Mapped[str] = id_column()
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id"))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(20), default="email")
    provider: Mapped[str] = mapped_column(String(30), default="postmark")
    # Unique: a re-delivered webhook or a retried send never stores a second row.
    provider_message_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(300))
    from_address: Mapped[str] = mapped_column(String(320), default="")
    to_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    draft_id: Mapped[str | None] = mapped_column(String(40))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()


class Draft(Base):
    """A reply drafted by the agent (or proactive outreach / follow-up), before it is sent.

    `idempotency_key` is the natural key of the step that wrote it (e.g. `reply-{message_id}`,
    `proactive-{customer_id}-{date}`), so a retried or replayed run never writes twice.
    """

    __tablename__ = "drafts"

    id: Mapped[str] = id_column()
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="reply")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    # Agent bookkeeping: tools called, model used, refund / escalation ids (no PII).
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str | None] = mapped_column(String(100))
    sent_message_id: Mapped[str | None] = mapped_column(String(40))
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
