"""Records kept beside the flows: embeddings, weekly metrics, the outbox, the audit log and the
gateway's raw inbound webhooks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Date, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, created_at_column, id_column, updated_at_column

OutboxStatus = Literal["pending", "published", "failed"]
WebhookStatus = Literal["received", "processed", "rejected", "failed"]


class TicketEmbedding(Base):
    """One embedding per resolved ticket (batch-embed-resolved-tickets), for similar-case search.

    The vector is stored as a JSON list of floats so SQLite and Postgres behave the same.
    """

    __tablename__ = "ticket_embeddings"

    ticket_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    model: Mapped[str] = mapped_column(String(100))
    dimensions: Mapped[int] = mapped_column(Integer)
    vector: Mapped[list[float]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500), default="")
    batch_id: Mapped[str | None] = mapped_column(String(100))  # the run that embedded it
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class WeeklyMetrics(Base):
    """Per-week agent figures computed from the audit log (one row per ISO week start)."""

    __tablename__ = "weekly_metrics"

    id: Mapped[str] = id_column()
    week_start: Mapped[date] = mapped_column(Date, unique=True)
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str | None] = mapped_column(String(100))
    computed_at: Mapped[datetime] = created_at_column()


class OutboxEvent(Base):
    """An event the gateway must publish, written in the same transaction as the data it names
    (transactional outbox). `event_id` is the Inngest idempotency id, unique here too.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),)

    id: Mapped[str] = id_column()
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    event_name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the event's `data`
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    published_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(1000))
    source_webhook_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class AuditLog(Base):
    """Append-only audit trail. Write it only through `service_kit.audit.record_audit`.

    `key` is the natural idempotency key of the logical action (unique), so a retry or a replay
    never writes a second row. `payload` is small JSON: ids and summaries, never PII.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_created", "action", "created_at"),
        Index("ix_audit_log_customer_created", "customer_id", "created_at"),
    )

    id: Mapped[str] = id_column()
    key: Mapped[str] = mapped_column(String(300), unique=True)
    action: Mapped[str] = mapped_column(String(50))
    actor: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str | None] = mapped_column(String(40))
    ticket_id: Mapped[str | None] = mapped_column(String(40), index=True)
    run_id: Mapped[str | None] = mapped_column(String(100))
    function_id: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_at_column()


class InboundWebhook(Base):
    """A raw delivery the gateway accepted (Postmark, Stripe, reviewer decisions ...).

    Unique per (source, external_id): a provider's re-delivery is recognised, not re-processed.
    """

    __tablename__ = "inbound_webhooks"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[str] = id_column()
    source: Mapped[str] = mapped_column(String(30))
    external_id: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str] = mapped_column(String(100), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw_body: Mapped[str | None] = mapped_column(Text)
    signature_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), default="received")
    error: Mapped[str | None] = mapped_column(String(1000))
    received_at: Mapped[datetime] = created_at_column()
    processed_at: Mapped[datetime | None] = mapped_column()
