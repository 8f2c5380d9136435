"""The other functions through inngest.experimental.mocked: escalation gate (approve / edit /
reject / timeout / decision stored first), daily fan-out idempotency, customer health check,
follow-up (and its cancellation rule), batch embeddings, weekly metrics, failed refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import inngest
import pytest
from inngest.experimental import mocked
from service_kit.ids import new_id
from service_kit.models import (
    Approval,
    AuditLog,
    Draft,
    Escalation,
    Message,
    RefundRequest,
    Ticket,
    TicketEmbedding,
    WeeklyMetrics,
)
from shared_events import TicketResolved
from sqlalchemy import select
from support_worker.functions.escalate_with_human_approval import NO_REVIEW_HEADER


def scalars(harness: Any, query: Any) -> list[Any]:
    async def read() -> list[Any]:
        async with harness.db.session() as session:
            return list((await session.scalars(query)).all())

    return harness.run(read())


def actions_for(harness: Any, customer_id: str) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        async with harness.db.session() as session:
            rows = await session.execute(
                select(AuditLog.action, AuditLog.actor)
                .where(AuditLog.customer_id == customer_id)
                .order_by(AuditLog.created_at, AuditLog.id)
            )
            return [(row[0], row[1]) for row in rows.all()]

    return harness.run(read())


# -- escalation gate ----------------------------------------------------------------------------


def escalate(harness: Any) -> tuple[Any, inngest.Event]:
    """Run the email flow on an angry email: returns the conversation and the escalation event."""
    convo = harness.conversation(subject="Unacceptable", body="This is unacceptable. Lawyer!")
    result = harness.trigger("handle-customer-email", convo.event())
    assert result.status is mocked.Status.COMPLETED, result.error
    [event] = harness.client.sent_named("customer/escalation.requested")
    harness.client.sent.clear()
    return convo, event


def decision(escalation_id: str, kind: str, approval_id: str) -> inngest.Event:
    return inngest.Event(
        name="escalation/decision.made",
        data={
            "escalation_id": escalation_id,
            "decision": kind,
            "reviewer": "rev_linus",
            "approval_id": approval_id,
            "decided_at": datetime.now(UTC).isoformat(),
        },
    )


def store_approval(harness: Any, request_id: str, kind: str, edited: str | None = None) -> str:
    approval_id = new_id("apr")

    async def write() -> None:
        async with harness.db.transaction() as session:
            session.add(
                Approval(
                    id=approval_id,
                    kind="escalation",
                    request_id=request_id,
                    decision=kind,
                    reviewer="rev_linus",
                    edited_text=edited,
                    token_id=new_id("tok"),
                )
            )

    harness.run(write())
    return approval_id


def outbound_bodies(harness: Any, ticket_id: str) -> list[str]:
    return scalars(
        harness,
        select(Message.body_text).where(
            Message.ticket_id == ticket_id, Message.direction == "outbound"
        ),
    )


@pytest.mark.parametrize(
    ("kind", "action", "posted"),
    [
        ("approve", "escalation_approved", True),
        ("edit", "escalation_edited", True),
        ("reject", "escalation_rejected", False),
    ],
)
def test_escalation_decisions(harness: Any, kind: str, action: str, posted: bool) -> None:
    convo, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    edited = "Hi, a senior colleague here: we are on it." if kind == "edit" else None
    approval_id = store_approval(harness, escalation_id, kind, edited)
    result = harness.trigger(
        "escalate-with-human-approval",
        event,
        stubs={"wait-for-decision": decision(escalation_id, kind, approval_id)},
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["posted"] is posted
    [review] = harness.client.sent_named("escalation/review.requested")
    assert review.id == f"escalation-review-{escalation_id}"
    audit = actions_for(harness, convo.customer_id)
    assert (action, "rev_linus") in audit
    bodies = outbound_bodies(harness, convo.ticket_id)
    if kind == "reject":
        assert bodies == []
        assert ("message_sent", "support-worker") not in audit
    else:
        assert len(bodies) == 1
        assert [a for a, _ in audit].count("message_sent") == 1
        assert (bodies[0] == edited) if kind == "edit" else bodies[0].startswith("Hi Test")
    [escalation] = scalars(harness, select(Escalation).where(Escalation.id == escalation_id))
    assert escalation.reviewer == "rev_linus"


def test_escalation_timeout_posts_with_a_no_review_header(harness: Any) -> None:
    convo, event = escalate(harness)
    result = harness.trigger(
        "escalate-with-human-approval", event, stubs={"wait-for-decision": mocked.Timeout}
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["outcome"] == "timed_out"
    assert ("escalation_timed_out", "timeout") in actions_for(harness, convo.customer_id)
    [body] = outbound_bodies(harness, convo.ticket_id)
    assert body.startswith(NO_REVIEW_HEADER)


def test_escalation_decision_stored_before_the_wait_wins_over_the_timeout(harness: Any) -> None:
    convo, event = escalate(harness)
    store_approval(harness, event.data["escalation_id"], "reject")
    result = harness.trigger(
        "escalate-with-human-approval", event, stubs={"wait-for-decision": mocked.Timeout}
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["outcome"] == "rejected"
    assert outbound_bodies(harness, convo.ticket_id) == []


# -- daily health check -------------------------------------------------------------------------


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
    drafts = scalars(fresh_harness, select(Draft).where(Draft.kind == "proactive"))
    assert [d.customer_id for d in drafts] == ["cust_002"]
    assert [a for a, _ in actions_for(fresh_harness, "cust_002")] == ["proactive_outreach_drafted"]
    fresh_harness.client.sent.clear()
    result = fresh_harness.trigger("daily-health-check", cron_event())
    sent = fresh_harness.client.sent_named("customer/health_check.requested")
    assert sorted(e.data["customer_id"] for e in sent) == ["cust_001", "cust_003"]
    assert result.output["customers_scheduled"] == 2


# -- follow-up ----------------------------------------------------------------------------------


def test_follow_up_sleeps_then_closes_the_ticket_and_asks_for_feedback(harness: Any) -> None:
    convo = harness.conversation(subject="Password", body="How do I reset my password?")
    assert harness.trigger("handle-customer-email", convo.event()).status is mocked.Status.COMPLETED
    [created] = harness.client.sent_named("support/draft.created")
    result = harness.trigger("follow-up-after-reply", created)
    assert result.status is mocked.Status.COMPLETED, result.error
    [ticket] = scalars(harness, select(Ticket).where(Ticket.id == convo.ticket_id))
    assert ticket.status == "closed"
    actions = [a for a, _ in actions_for(harness, convo.customer_id)]
    assert actions[-2:] == ["ticket_closed", "follow_up_sent"]
    assert len(outbound_bodies(harness, convo.ticket_id)) == 2  # the reply + the feedback ask
    [resolved] = harness.client.sent_named("ticket/resolved")
    assert resolved.id == f"ticket-resolved-{convo.ticket_id}"


def test_follow_up_is_cancelled_by_a_new_email_from_the_same_customer(harness: Any) -> None:
    config = harness.functions["follow-up-after-reply"].get_config("http://x").main
    [cancel] = config.cancel or []
    assert cancel.event == "customer/email.received"
    assert cancel.if_exp == "async.data.customer_id == event.data.customer_id"
    [trigger] = config.triggers
    assert trigger.expression == "event.data.kind == 'reply'"


# -- batch embeddings ---------------------------------------------------------------------------


def resolved_events(harness: Any, count: int) -> list[inngest.Event]:
    events = []
    for index in range(count):
        convo = harness.conversation(subject=f"Issue {index}", body=f"printer jam number {index}")
        events.append(
            TicketResolved(
                ticket_id=convo.ticket_id, customer_id=convo.customer_id, resolved_by="agent"
            ).to_event(id=f"ticket-resolved-{convo.ticket_id}")
        )
    return events


def test_batch_of_fifty_is_embedded_with_one_call(harness: Any) -> None:
    events = resolved_events(harness, 50)
    calls_before = harness.deps.embedder.calls
    result = harness.trigger("batch-embed-resolved-tickets", events)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["embedded"] == 50
    assert harness.deps.embedder.calls == calls_before + 1
    ids = [event.data["ticket_id"] for event in events]
    rows = scalars(harness, select(TicketEmbedding).where(TicketEmbedding.ticket_id.in_(ids)))
    assert len(rows) == 50 and all(len(row.vector) == 64 for row in rows)
    config = harness.functions["batch-embed-resolved-tickets"].get_config("http://x").main
    assert config.batch_events.max_size == 50


def test_partial_batch_after_the_timeout_is_embedded_and_searchable(harness: Any) -> None:
    events = resolved_events(harness, 3)
    result = harness.trigger("batch-embed-resolved-tickets", events)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["embedded"] == 3
    config = harness.functions["batch-embed-resolved-tickets"].get_config("http://x").main
    assert config.batch_events.timeout == timedelta(seconds=30)
    # The similar-cases tool finds an embedded ticket for a related query.
    from support_worker.deps import DbSupportBackend

    backend = DbSupportBackend(
        harness.deps.repo, harness.deps.embedder, customer_id="x", message_id="x", ticket_id=None
    )
    cases = harness.run(backend.similar_cases("printer jam number 1", 3))
    assert cases and cases[0].score > 0.5


# -- weekly metrics and failed refunds ----------------------------------------------------------


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
    [row] = scalars(
        fresh_harness, select(WeeklyMetrics).where(WeeklyMetrics.week_start == last_week)
    )
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
    assert len(scalars(fresh_harness, select(WeeklyMetrics))) == 1


def test_refund_failed_drafts_a_follow_up_on_the_ticket(harness: Any) -> None:
    convo = harness.conversation(
        subject="Refund", body="Refund {order} please", order_amounts=(20_000, 2_500)
    )
    order_id = convo.order_ids[-1]
    harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={f"score-refund-risk-{order_id}": {"score": 0.1, "level": "low"}},
    )
    [refund] = scalars(harness, select(RefundRequest).where(RefundRequest.order_id == order_id))
    event = inngest.Event(
        name="stripe/charge.refund.failed",
        data={
            "stripe_event_id": f"evt_{order_id}",
            "charge_id": f"ch_{order_id}",
            "refund_id": refund.provider_refund_id,
            "customer_id": convo.customer_id,
            "amount_cents": 2500,
            "currency": "usd",
            "failure_reason": "expired_card",
        },
    )
    harness.client.sent.clear()
    result = harness.trigger("handle-refund-failed", event)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["ticket_id"] == convo.ticket_id
    [draft] = scalars(
        harness,
        select(Draft).where(Draft.kind == "refund_failed", Draft.ticket_id == convo.ticket_id),
    )
    assert "declined" in draft.body_text
    [refund] = scalars(harness, select(RefundRequest).where(RefundRequest.order_id == order_id))
    assert refund.status == "failed"
    [created] = harness.client.sent_named("support/draft.created")
    assert created.data["kind"] == "refund_failed"
    unknown = inngest.Event(
        name=event.name, data={**event.data, "refund_id": "re_x", "charge_id": "ch_unknown"}
    )
    assert harness.trigger("handle-refund-failed", unknown).output == {
        "status": "no_matching_ticket"
    }


def test_follow_up_skips_a_reply_that_was_never_sent(harness: Any) -> None:
    convo, event = escalate(harness)
    store_approval(harness, event.data["escalation_id"], "reject")
    harness.trigger(
        "escalate-with-human-approval", event, stubs={"wait-for-decision": mocked.Timeout}
    )
    [draft] = scalars(harness, select(Draft).where(Draft.message_id == convo.message_id))
    created = inngest.Event(
        name="support/draft.created",
        data={
            "draft_id": draft.id,
            "customer_id": convo.customer_id,
            "ticket_id": convo.ticket_id,
            "message_id": convo.message_id,
            "kind": "reply",
        },
    )
    result = harness.trigger("follow-up-after-reply", created)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["status"] == "reply_not_sent"
    [ticket] = scalars(harness, select(Ticket).where(Ticket.id == convo.ticket_id))
    assert ticket.status != "closed"
