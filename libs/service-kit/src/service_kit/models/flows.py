"""Tables behind the durable flows: refunds, human approvals, escalations, risk, notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, created_at_column, id_column, updated_at_column

RefundStatus = Literal[
    "pending",  # created, not scored yet
    "awaiting_approval",  # a human decides (HITL)
    "approved",  # approved (auto or human), not issued yet
    "issuing",  # its amount is held on the order; the provider is being called
    "issued",  # the provider accepted the refund
    "rejected",  # a reviewer said no
    "timed_out",  # nobody decided within the wait
    "failed",  # the provider refused / the refund failed later
    "exceeds_refundable",  # approved, but the order had less than this left to refund
    "cancelled",  # its run was cancelled before the refund was held
]
RiskLevel = Literal["low", "medium", "high"]
ApprovalKind = Literal["refund", "escalation"]
ApprovalDecision = Literal["approve", "edit", "reject"]
EscalationStatus = Literal[
    "pending", "approved", "edited", "rejected", "timed_out", "posted", "cancelled"
]
NotificationStatus = Literal["pending", "sent", "failed"]
NotificationChannel = Literal["slack", "email"]


class RefundRequest(Base):
    """A refund the agent asked for. `idempotency_key` is the natural key of the request (e.g.
    `refund-{message_id}-{order_id}`); `id` doubles as the provider idempotency key when issuing.
    """

    __tablename__ = "refund_requests"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index("ix_refund_requests_customer_status", "customer_id", "status"),
    )

    id: Mapped[str] = id_column()
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id"))
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    risk_score: Mapped[float | None] = mapped_column(Float)
    risk_level: Mapped[str | None] = mapped_column(String(10))
    risk_reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    decided_by: Mapped[str | None] = mapped_column(String(100))  # reviewer, "auto" or "timeout"
    decided_at: Mapped[datetime | None] = mapped_column()
    provider_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    run_id: Mapped[str | None] = mapped_column(String(100))
    issued_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Approval(Base):
    """A human decision on a refund or an escalation (HITL).

    The gateway stores the decision *before* it sends the decision event, so a decision that
    arrives before the flow's `wait_for_event` is registered is never lost: the flow checks this
    table first. One decision per (kind, request_id); each signed link token is single-use.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("kind", "request_id"),
        CheckConstraint("kind IN ('refund', 'escalation')", name="kind"),
        CheckConstraint("decision IN ('approve', 'edit', 'reject')", name="decision"),
    )

    id: Mapped[str] = id_column()
    kind: Mapped[str] = mapped_column(String(20))
    # refund_requests.id or escalations.id
    request_id: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(10))
    reviewer: Mapped[str] = mapped_column(String(100))
    edited_text: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(String(100), unique=True)
    decided_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()


class Escalation(Base):
    """A conversation the agent escalated to a senior reviewer, with the draft awaiting review."""

    __tablename__ = "escalations"

    id: Mapped[str] = id_column()
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    reason: Mapped[str] = mapped_column(String(200))
    draft_text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decision: Mapped[str | None] = mapped_column(String(10))
    reviewer: Mapped[str | None] = mapped_column(String(100))  # reviewer id or "timeout"
    final_text: Mapped[str | None] = mapped_column(Text)
    posted_message_id: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column()
    posted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class RiskProfile(Base):
    """A customer's current refund risk, maintained by risk-worker (one row per customer)."""

    __tablename__ = "risk_profiles"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    level: Mapped[str] = mapped_column(String(10), default="low")
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    refund_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disputes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refunds_issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Last event applied, so a re-delivered event does not count twice.
    last_event_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Notification(Base):
    """A Slack / email message the notifier sends at most once (`dedup_key` is unique)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_created", "status", "created_at"),)

    id: Mapped[str] = id_column()
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(1000))
    provider_response: Mapped[str | None] = mapped_column(String(1000))
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    related_id: Mapped[str | None] = mapped_column(String(100))  # request / escalation / run id
    run_id: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
