"""At-most-once delivery through the notifications table (real database, fake Slack)."""

from __future__ import annotations

import httpx
import pytest
from nerve_testing.fakes import FakeSlackWebhook
from notifier.channels import (
    LocalSinkChannel,
    OutboundMessage,
    PermanentDeliveryError,
    SlackWebhookChannel,
    TransientDeliveryError,
)
from notifier.delivery import deliver_notification, record_notifications
from notifier.routing import Routes
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import AuditLog, Notification
from sqlalchemy import func, select, update

ROUTES = Routes(slack_destinations=frozenset({"support"}))


def message(key: str, destination: str = "support") -> OutboundMessage:
    return OutboundMessage(
        dedup_key=key,
        kind="refund_failed",
        destination=destination,
        subject="Refund re_1 failed",
        text="Refund re_1 of 10.00 USD failed.",
        facts={"customer_id": "cust_001", "refund_id": "re_1"},
    )


async def row(db: Database, notification_id: str) -> Notification:
    async with db.session() as session:
        found = await session.get(Notification, notification_id)
        assert found is not None
        return found


def channels(slack: FakeSlackWebhook, http: httpx.AsyncClient) -> dict[str, object]:
    return {
        "slack": SlackWebhookChannel(http, {"support": slack.url("support")}),
        "local": LocalSinkChannel(),
    }


async def test_recording_twice_keeps_one_row_per_channel(database: Database) -> None:
    key = new_id("t")
    first = await record_notifications(database, message(key), ROUTES, run_id="run-1")
    again = await record_notifications(database, message(key), ROUTES, run_id="run-2")
    assert [r.created for r in first] == [True]
    assert [r.created for r in again] == [False]
    assert first[0].id == again[0].id
    async with database.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.dedup_key.like(f"{key}%"))
        )
    assert count == 1
    stored = await row(database, first[0].id)
    assert (stored.status, stored.channel, stored.recipient) == (
        "pending",
        "slack",
        "slack:support",
    )
    assert stored.run_id == "run-1"


async def test_unrouted_destination_goes_to_the_local_sink(database: Database) -> None:
    [recorded] = await record_notifications(database, message(new_id("t"), "risk"), ROUTES)
    assert recorded.channel == "local"
    outcome = await deliver_notification(
        database, {"local": LocalSinkChannel()}, recorded.id, destination="risk"
    )
    assert outcome.outcome == "local"
    assert (await row(database, recorded.id)).status == "sent"


async def test_a_retry_or_replay_never_sends_twice(
    database: Database, slack: FakeSlackWebhook, http: httpx.AsyncClient
) -> None:
    key = new_id("t")
    [recorded] = await record_notifications(database, message(key), ROUTES)
    first = await deliver_notification(
        database, channels(slack, http), recorded.id, destination="support"
    )
    second = await deliver_notification(
        database, channels(slack, http), recorded.id, destination="support"
    )
    # a replay from the top records again (finds the row) and delivers again (finds it sent)
    [replayed] = await record_notifications(database, message(key), ROUTES)
    third = await deliver_notification(
        database, channels(slack, http), replayed.id, destination="support"
    )
    assert (first.outcome, second.outcome, third.outcome) == (
        "sent",
        "already_sent",
        "already_sent",
    )
    assert len(slack.posts) == 1
    stored = await row(database, recorded.id)
    assert (stored.status, stored.attempts) == ("sent", 1)
    assert stored.sent_at is not None
    async with database.session() as session:
        audits = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.key == f"notification-sent:{recorded.id}")
        )
    assert audits == 1


async def test_transient_failure_releases_the_claim_and_the_retry_sends_once(
    database: Database, slack: FakeSlackWebhook, http: httpx.AsyncClient
) -> None:
    [recorded] = await record_notifications(database, message(new_id("t")), ROUTES)
    slack.fail_next(503, "service unavailable")
    with pytest.raises(TransientDeliveryError):
        await deliver_notification(
            database, channels(slack, http), recorded.id, destination="support"
        )
    pending = await row(database, recorded.id)
    assert pending.status == "pending"
    assert "503" in (pending.last_error or "")
    outcome = await deliver_notification(
        database, channels(slack, http), recorded.id, destination="support"
    )
    assert outcome.outcome == "sent"
    assert [status for _, status in slack.attempts] == [503, 200]
    assert (await row(database, recorded.id)).attempts == 2


async def test_permanent_failure_is_never_retried(
    database: Database, slack: FakeSlackWebhook, http: httpx.AsyncClient
) -> None:
    [recorded] = await record_notifications(database, message(new_id("t")), ROUTES)
    slack.fail_next(404, "no_service")
    with pytest.raises(PermanentDeliveryError, match="no_service"):
        await deliver_notification(
            database, channels(slack, http), recorded.id, destination="support"
        )
    # a later retry (the engine does not retry NonRetriableError, but a replay might) refuses
    with pytest.raises(PermanentDeliveryError, match="failed permanently before"):
        await deliver_notification(
            database, channels(slack, http), recorded.id, destination="support"
        )
    assert slack.attempts == [("/services/T000/support/fake", 404)]
    assert (await row(database, recorded.id)).status == "failed"


async def test_an_interrupted_send_is_not_repeated(
    database: Database, slack: FakeSlackWebhook, http: httpx.AsyncClient
) -> None:
    """A worker that died after claiming (maybe after Slack took the post) leaves `sending`:
    the retry must not post a second time."""
    [recorded] = await record_notifications(database, message(new_id("t")), ROUTES)
    async with database.transaction() as session:
        await session.execute(
            update(Notification).where(Notification.id == recorded.id).values(status="sending")
        )
    outcome = await deliver_notification(
        database, channels(slack, http), recorded.id, destination="support"
    )
    assert outcome.outcome == "in_flight"
    assert slack.attempts == []
