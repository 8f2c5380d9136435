"""The scheduled functions through inngest.experimental.mocked: the daily health check's fan-out
(once per customer per day, by cron or a manual request), the customer health check's one draft,
and the weekly metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import inngest
from inngest.experimental import mocked
from service_kit.ids import new_id
from service_kit.models import AuditLog, Draft, Message, WeeklyMetrics
from sqlalchemy import select
from support_harness import actions_for, read


def cron_event() -> inngest.Event:
    return inngest.Event(name="inngest/scheduled.timer", data={"cron": "0 9 * * *"})


def test_daily_fan_out_targets_pro_and_enterprise_once_per_day(fresh_harness: Any) -> None:
    first = fresh_harness.trigger("daily-health-check", cron_event())
    second = fresh_harness.trigger("daily-health-check", cron_event())
    assert first.status is mocked.Status.COMPLETED, first.error
    assert first.output["customers_scheduled"] == 3
    sent = fresh_harness.client.sent_named("customer/health_check.requested")
    today = datetime.now(UTC).date().isoformat()
    assert sorted(event.data["customer_id"] for event in sent[:3]) == [
        "cust_001",
        "cust_002",
        "cust_003",
    ]
    # Two invocations the same day produce the same event ids: the engine fans out once.
    ids = [event.id for event in sent]
    assert (
        ids[:3] == ids[3:] == [f"health-{c}-{today}" for c in ("cust_001", "cust_002", "cust_003")]
    )
    assert second.output["customers_scheduled"] == 3


def test_a_manual_run_request_fans_out_like_the_cron_with_the_same_ids(fresh_harness: Any) -> None:
    manual = inngest.Event(
        name="support/health_check.run_requested", data={"requested_by": "ops@nerve.dev"}
    )
    by_event = fresh_harness.trigger("daily-health-check", manual)
    by_cron = fresh_harness.trigger("daily-health-check", cron_event())
    assert by_event.status is mocked.Status.COMPLETED, by_event.error
    assert by_event.output["customers_scheduled"] == by_cron.output["customers_scheduled"] == 3
    ids = [event.id for event in fresh_harness.client.sent_named("customer/health_check.requested")]
    assert ids[:3] == ids[3:]  # the engine drops the second fan-out: once per customer per day


def test_daily_health_check_runs_on_its_cron_and_on_a_manual_request(fresh_harness: Any) -> None:
    function = fresh_harness.functions["daily-health-check"]
    config = function.get_config("http://worker/api/inngest").main
    triggers = [t.model_dump(exclude_none=True) for t in config.triggers]
    assert triggers == [
        {"cron": "0 9 * * *"},
        {"event": "support/health_check.run_requested"},
    ]


def test_health_check_drafts_once_and_skips_recently_contacted(fresh_harness: Any) -> None:
    today = datetime.now(UTC).date()
    event = inngest.Event(
        name="customer/health_check.requested",
        data={"customer_id": "cust_002", "customer_tier": "pro", "check_date": today.isoformat()},
    )
    for _ in range(2):  # a re-delivery writes nothing new
        result = fresh_harness.trigger("customer-health-check", event)
        assert result.status is mocked.Status.COMPLETED, result.error
    drafts = read(fresh_harness, select(Draft).where(Draft.kind == "proactive"))
    assert [d.customer_id for d in drafts] == ["cust_002"]
    assert [a for a, _ in actions_for(fresh_harness, "cust_002")] == ["proactive_outreach_drafted"]
    fresh_harness.client.sent.clear()
    result = fresh_harness.trigger("daily-health-check", cron_event())
    sent = fresh_harness.client.sent_named("customer/health_check.requested")
    assert sorted(e.data["customer_id"] for e in sent) == ["cust_001", "cust_003"]
    assert result.output["customers_scheduled"] == 2


# -- weekly metrics --------------------------------------------------------------------------------


def test_weekly_metrics_count_last_weeks_audit_rows(fresh_harness: Any) -> None:
    today = datetime.now(UTC).date()
    last_week = today - timedelta(days=today.weekday() + 7)
    inside = datetime.combine(last_week, datetime.min.time(), tzinfo=UTC) + timedelta(days=2)
    before = inside - timedelta(days=7)  # the week before: must not count
    convo = fresh_harness.conversation(subject="Hello", body="Hi")

    async def seed() -> None:
        rows = [
            ("message_received", inside),
            ("message_received", inside),
            ("message_received", before),
            ("message_sent", inside),
            ("refund_issued", inside),
            ("refund_blocked", inside),
            ("escalation_edited", inside),
            ("escalation_timed_out", inside),
        ]
        async with fresh_harness.db.transaction() as session:
            for action, at in rows:
                session.add(
                    AuditLog(
                        id=new_id("aud"),
                        key=new_id("k"),
                        action=action,
                        actor="test",
                        payload={},
                        created_at=at,
                    )
                )
            message = await session.get(Message, convo.message_id)
            assert message is not None
            message.created_at = inside
            session.add(
                Draft(
                    id=new_id("drf"),
                    idempotency_key=new_id("k"),
                    kind="reply",
                    customer_id=convo.customer_id,
                    message_id=convo.message_id,
                    created_at=inside + timedelta(seconds=90),
                )
            )

    fresh_harness.run(seed())
    result = fresh_harness.trigger(
        "weekly-agent-metrics", inngest.Event(name="inngest/scheduled.timer", data={})
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    [row] = read(fresh_harness, select(WeeklyMetrics).where(WeeklyMetrics.week_start == last_week))
    assert row.figures == result.output
    assert row.figures["conversations_handled"] == 2
    assert row.figures["replies_sent"] == 1
    assert (row.figures["refunds_issued"], row.figures["refunds_blocked"]) == (1, 1)
    assert row.figures["escalations"] == {"approved": 0, "edited": 1, "rejected": 0, "timed_out": 1}
    assert row.figures["median_seconds_to_draft"] == 90.0
    # A rerun the same week updates the one row instead of adding another.
    fresh_harness.trigger(
        "weekly-agent-metrics", inngest.Event(name="inngest/scheduled.timer", data={})
    )
    assert len(read(fresh_harness, select(WeeklyMetrics))) == 1
