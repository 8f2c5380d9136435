"""At-most-once delivery through the notifications table.

1. `record_notifications`: one row per (message, channel) with a natural `dedup_key`, inserted
   with ON CONFLICT DO NOTHING, status `pending`. A retry or a replay finds the existing row.
2. `deliver_notification`: claims the row (`pending` -> `sending`, atomically), sends it, then
   marks it `sent` (or `failed` on a permanent error). A transient error puts it back to
   `pending` (the provider said it did not take it) before the error propagates for a retry.
   A row already `sent` is not sent again; a row found `sending` means another attempt is in
   flight or was interrupted after it may have sent: it is not sent again either (at most once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from service_kit.audit import AuditAction, record_audit
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import Notification, utcnow
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .channels import (
    Channel,
    ChannelName,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from .routing import Routes, render_body

Outcome = Literal["sent", "already_sent", "in_flight", "local"]


@dataclass(frozen=True)
class RecordedNotification:
    """What a step may return: ids and statuses, no text."""

    id: str
    channel: ChannelName
    destination: str
    status: str
    created: bool

    def to_summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "destination": self.destination,
            "status": self.status,
            "created": self.created,
        }


def dedup_key_for(message: OutboundMessage, channel: ChannelName) -> str:
    return f"{message.dedup_key}:{channel}"[:200]


def _insert_ignore(session: AsyncSession, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
    )


async def record_notifications(
    db: Database,
    message: OutboundMessage,
    routes: Routes,
    *,
    run_id: str | None = None,
    customer_id: str | None = None,
) -> list[RecordedNotification]:
    """One pending row per channel reaching the destination; existing rows are returned as is."""
    recorded: list[RecordedNotification] = []
    related_id = next(
        (
            message.facts[key]
            for key in ("request_id", "draft_id", "run_id", "refund_id")
            if message.facts.get(key)
        ),
        None,
    )
    async with db.transaction() as session:
        for channel in routes.channels_for(message.destination):
            key = dedup_key_for(message, channel)
            values = {
                "id": new_id("ntf"),
                "dedup_key": key,
                "channel": channel,
                "kind": message.kind,
                "recipient": routes.recipient(channel, message.destination),
                "subject": message.subject[:300],
                "body": render_body(channel, message),
                "status": "pending",
                "attempts": 0,
                "customer_id": customer_id or message.facts.get("customer_id") or None,
                "related_id": related_id,
                "run_id": run_id,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            result = await session.execute(_insert_ignore(session, values))
            created = getattr(result, "rowcount", 0) == 1
            row = (
                await session.execute(
                    select(Notification.id, Notification.status).where(
                        Notification.dedup_key == key
                    )
                )
            ).one()
            recorded.append(
                RecordedNotification(
                    id=row.id,
                    channel=channel,
                    destination=message.destination,
                    status=row.status,
                    created=created,
                )
            )
    return recorded


@dataclass(frozen=True)
class DeliveryOutcome:
    notification_id: str
    outcome: Outcome
    channel: str
    detail: str

    def to_summary(self) -> dict[str, str]:
        return {
            "notification_id": self.notification_id,
            "outcome": self.outcome,
            "channel": self.channel,
            "detail": self.detail[:200],
        }


class UnknownNotification(LookupError):
    pass


async def _set(db: Database, notification_id: str, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(updated_at=utcnow(), **values)
        )


async def deliver_notification(
    db: Database,
    channels: Mapping[str, Channel],
    notification_id: str,
    *,
    destination: str,
    now: datetime | None = None,
) -> DeliveryOutcome:
    """Send one recorded notification at most once (see the module docstring).

    Raises `TransientDeliveryError` (row back to pending: retry) or `PermanentDeliveryError`
    (row marked failed: never retried, also on a later replay).
    """
    async with db.transaction() as session:
        claimed = await session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == "pending")
            .values(status="sending", attempts=Notification.attempts + 1, updated_at=utcnow())
        )
        row = await session.get(Notification, notification_id)
        if row is None:
            raise UnknownNotification(f"notification {notification_id!r} does not exist")
        won_claim = getattr(claimed, "rowcount", 0) == 1
        status, channel_name, last_error = row.status, row.channel, row.last_error
        customer_id = row.customer_id
        message = OutboundMessage(
            dedup_key=row.dedup_key,
            kind=row.kind,
            destination=destination,
            subject=row.subject,
            text=row.body,
        )
    if not won_claim:
        if status == "sent":
            return DeliveryOutcome(notification_id, "already_sent", channel_name, "sent before")
        if status == "failed":
            raise PermanentDeliveryError(f"failed permanently before: {last_error or 'unknown'}")
        return DeliveryOutcome(
            notification_id, "in_flight", channel_name, "another attempt holds the claim"
        )
    channel = channels.get(channel_name)
    if channel is None:
        error = f"channel {channel_name!r} is not configured in this notifier"
        await _set(db, notification_id, status="failed", last_error=error)
        raise PermanentDeliveryError(error)
    try:
        result = await channel.send(message)
    except TransientDeliveryError as error:
        await _set(db, notification_id, status="pending", last_error=str(error)[:1000])
        raise
    except PermanentDeliveryError as error:
        await _set(db, notification_id, status="failed", last_error=str(error)[:1000])
        raise
    async with db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(
                status="sent",
                sent_at=now or utcnow(),
                provider_response=result.detail[:1000],
                last_error=None,
                updated_at=utcnow(),
            )
        )
        await record_audit(
            session,
            AuditAction.NOTIFICATION_SENT,
            key=f"notification-sent:{notification_id}",
            actor="notifier",
            customer_id=customer_id,
            payload={
                "notification_id": notification_id,
                "kind": message.kind,
                "channel": channel_name,
            },
        )
    outcome: Outcome = "local" if result.channel == "local" else "sent"
    return DeliveryOutcome(notification_id, outcome, channel_name, result.detail)
