"""notifier + risk-worker on a real engine (the devserver, or INNGEST_BASE_URL) over HTTP,
with a local fake Slack webhook and an aiosmtpd SMTP server at the edge.

(The three-service fan-out including support-worker lives in tests/integration.)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    runs_for_event,
    send_events,
    wait_for_run,
)
from nerve_testing.fakes import FakeSlackWebhook, SmtpSink
from notifier.channels import LocalSinkChannel, SlackWebhookChannel, SmtpConfig, SmtpEmailChannel
from notifier.functions import NotifierDeps
from notifier.functions import create_functions as notifier_functions
from notifier.messages import DecisionLinks
from notifier.routing import Routes
from notifier_harness import PerCallHttp, Platform
from risk_worker.functions import RiskDeps
from risk_worker.functions import create_functions as risk_functions
from service_kit.decision_tokens import decision_url, issue_decision_token
from service_kit.ids import new_id
from service_kit.models import AuditLog, RiskProfile
from service_kit.testing import loop_free_database
from shared_events import (
    RefundApprovalRequested,
    StripeChargeDisputeCreated,
    StripeChargeRefundFailed,
)
from sqlalchemy import func, select

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(
    inngest_engine: EngineHandle, primary_database_url: str
) -> AsyncIterator[Platform]:
    db = loop_free_database(primary_database_url)
    with FakeSlackWebhook() as slack, SmtpSink() as smtp:
        urls = {"support": slack.url("support"), "ops": slack.url("ops")}
        smtp_config = SmtpConfig(host=smtp.host, port=smtp.port, sender="nerve@example.com")
        recipients = {"approvals": ["lead@example.com"]}

        def issue(kind: str, request_id: str) -> str:
            token = issue_decision_token(
                "integration-secret",
                kind=kind,
                request_id=request_id,  # type: ignore[arg-type]
                reviewer="support-lead",
                ttl=timedelta(hours=4),
            )
            return decision_url("http://gateway.test", token)

        notifier_deps = NotifierDeps(
            db=db,
            routes=Routes(
                slack_destinations=frozenset(urls),
                email_destinations=frozenset(recipients),
                email_recipients=recipients,
            ),
            channels={
                "slack": PerCallHttp(lambda http: SlackWebhookChannel(http, urls)),
                "email": SmtpEmailChannel(smtp_config, recipients),
                "local": LocalSinkChannel(),
            },
            decision_links=DecisionLinks(issue=issue),
            deliver_retries=2,
        )
        risk_deps = RiskDeps(db=db, debounce_period=timedelta(seconds=1))
        # The real app ids: a later sync of the same app (another module) replaces this one
        # instead of leaving a stale app subscribed to the same events.
        notifier_client = make_client(inngest_engine, "notifier")
        risk_client = make_client(inngest_engine, "risk-worker")
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(
                running_app(
                    inngest_engine,
                    notifier_client,
                    notifier_functions(notifier_client, notifier_deps),
                )
            )
            await stack.enter_async_context(
                running_app(inngest_engine, risk_client, risk_functions(risk_client, risk_deps))
            )
            yield Platform(inngest_engine, db, slack, smtp)
    await db.dispose()


async def test_one_refund_failure_runs_risk_and_notifier_once_and_posts_once(
    platform: Platform,
) -> None:
    customer = "cust_004"
    evt = f"evt_{new_id('t')}"
    await platform.stored_delivery("stripe/charge.refund.failed", customer, evt)
    event = StripeChargeRefundFailed(
        stripe_event_id=evt,
        charge_id="ch_seed_1008",
        refund_id=f"re_{evt}",
        customer_id=customer,
        amount_cents=4900,
        currency="usd",
        failure_reason="lost_or_stolen_card",
    )
    [event_id] = await send_events(platform.engine, [event.to_wire(id=evt)])
    await wait_for_run(
        platform.engine, event_id, function_id=None, status={"Completed"}, timeout=30
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = await runs_for_event(platform.engine, event_id)
        if len(runs) >= 2 and all(run["status"] == "Completed" for run in runs):
            break
        await asyncio.sleep(0.1)
    # The public REST API names functions by UUID; tell the two runs apart by their output.
    assert len(runs) == 2, runs
    outputs = sorted((run["output"] for run in runs), key=lambda output: "deliveries" in output)
    risk_output, notifier_output = outputs
    assert risk_output["customer_id"] == customer
    assert [d["outcome"] for d in notifier_output["deliveries"]] == ["sent"]
    [post] = platform.slack.wait_for_posts(1)
    await asyncio.sleep(0.5)  # nothing else arrives
    assert platform.slack.posts == [post]
    assert f"re_{evt}" in post.text and "lost_or_stolen_card" in post.text
    async with platform.db.session() as session:
        audits = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.key == f"risk-profile:{customer}:{evt}")
        )
        profile = await session.get(RiskProfile, customer)
    assert audits == 1
    assert profile is not None and profile.last_event_id == evt


async def test_a_burst_of_disputes_recomputes_the_profile_once(platform: Platform) -> None:
    customer = await platform.new_customer(age_days=10)
    events = []
    for _ in range(10):
        evt = f"evt_{new_id('t')}"
        await platform.stored_delivery("stripe/charge.dispute.created", customer, evt)
        events.append(
            StripeChargeDisputeCreated(
                stripe_event_id=evt,
                dispute_id=f"dp_{evt}",
                charge_id="ch_seed_1006",
                customer_id=customer,
                amount_cents=2999,
                currency="usd",
            ).to_wire(id=evt)
        )
    ids = await send_events(platform.engine, events)
    # the debounced run starts after 1 s of quiet, with the last event
    run = await wait_for_run(platform.engine, ids[-1], status={"Completed"}, timeout=30)
    assert run["output"]["level"] == "high"
    for event_id in ids[:-1]:
        assert await runs_for_event(platform.engine, event_id) == []
    async with platform.db.session() as session:
        recomputes = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "risk_profile_updated", AuditLog.run_id == run["run_id"])
        )
        profile = await session.get(RiskProfile, customer)
    assert recomputes == 1
    assert profile is not None
    assert (profile.disputes, profile.level, profile.last_event_id) == (
        10,
        "high",
        events[-1]["id"],
    )


async def test_approval_request_is_emailed_with_decision_links(platform: Platform) -> None:
    request_id = new_id("rr")
    event = RefundApprovalRequested(
        request_id=request_id,
        customer_id="cust_002",
        order_id="ord_1004",
        amount_cents=9900,
        risk_score=0.4,
        risk_level="medium",
    )
    [event_id] = await send_events(
        platform.engine, [event.to_wire(id=f"refund-approval-{request_id}")]
    )
    await wait_for_run(platform.engine, event_id, status={"Completed"}, timeout=30)
    [email] = platform.smtp.wait_for_messages(1)
    assert email.recipients == ("lead@example.com",)
    assert "99.00 USD" in email.subject
    assert "Approve: http://gateway.test/decisions/" in email.body
    assert "Reject: http://gateway.test/decisions/" in email.body
    [row] = await platform.notifications(f"refund-approval:{request_id}")
    assert (row.channel, row.status) == ("email", "sent")


async def test_slack_5xx_retried_4xx_dead_letters_to_ops(platform: Platform) -> None:
    # 5xx once: the step retries, Slack gets the message once
    seen = len(platform.slack.attempts)
    platform.slack.fail_next(503, "busy")
    first = f"evt_{new_id('t')}"
    event = StripeChargeRefundFailed(
        stripe_event_id=first, charge_id="ch_1", refund_id="re_a", amount_cents=100, currency="usd"
    )
    [event_id] = await send_events(platform.engine, [event.to_wire(id=first)])
    await wait_for_run(platform.engine, event_id, status={"Completed"}, timeout=30)
    assert [status for _, status in platform.slack.attempts[seen:]] == [503, 200]
    assert len([post for post in platform.slack.posts if "re_a" in post.text]) == 1
    # 4xx: not retried; the delivery fails for good and the ops channel hears about it
    platform.slack.fail_next(404, "no_service")
    second = f"evt_{new_id('t')}"
    event = StripeChargeRefundFailed(
        stripe_event_id=second, charge_id="ch_2", refund_id="re_b", amount_cents=100, currency="usd"
    )
    [event_id] = await send_events(platform.engine, [event.to_wire(id=second)])
    run = await wait_for_run(platform.engine, event_id, status={"Completed"}, timeout=30)
    assert run["output"]["deliveries"][0]["outcome"] == "failed"
    [row] = await platform.notifications(f"refund-failed:{second}")
    assert row.status == "failed" and "no_service" in (row.last_error or "")
    deadline = time.monotonic() + 20
    alerts: list[Any] = []
    while not alerts and time.monotonic() < deadline:
        alerts = [
            post
            for post in platform.slack.posts_to("ops")
            if "deliver-notification" in post.text and "no_service" in post.text
        ]
        await asyncio.sleep(0.1)
    [alert] = alerts
    assert "App notifier" in alert.text and "run " in alert.text
    support_attempts = [
        status for path, status in platform.slack.attempts[seen:] if path.endswith("/support/fake")
    ]
    assert support_attempts == [503, 200, 404]


async def test_slack_is_throttled_to_one_message_per_second_per_webhook(platform: Platform) -> None:
    batch = new_id("t")
    events = [
        StripeChargeRefundFailed(
            stripe_event_id=f"evt_{batch}_{n}",
            charge_id=f"ch_{n}",
            refund_id=f"re_{batch}_{n}",
            amount_cents=100,
            currency="usd",
        ).to_wire(id=f"evt_{batch}_{n}")
        for n in range(4)
    ]
    await send_events(platform.engine, events)
    deadline = time.monotonic() + 30
    posts: list[Any] = []
    while len(posts) < 4 and time.monotonic() < deadline:
        posts = [post for post in platform.slack.posts_to("support") if batch in post.text]
        await asyncio.sleep(0.05)
    assert len(posts) == 4
    gaps = [later.received_at - earlier.received_at for earlier, later in itertools.pairwise(posts)]
    # Throttle limit 1 per 1 s keyed by webhook, with the SDK's default burst of 1: the engine
    # admits limit + burst = 2 starts from idle (Slack tolerates short bursts), then one per
    # second: four posts need at least ~2 s. (Unthrottled they arrive within milliseconds; each
    # gap varies with when the throttled run gets a worker, so only the span is asserted.)
    assert posts[-1].received_at - posts[0].received_at >= 1.5, gaps
