"""Every notifier subscription through `inngest.experimental.mocked` (real DB, fake Slack).

Subscriptions are tested with the `deliver-*` invoke stubbed (what they compose and record);
`deliver-notification` itself, triggered with its invoke payload (what reaches Slack), is tested
in test_notifier_deliver_function.py.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import inngest
from inngest.experimental import mocked
from nerve_testing.fakes import FakeSlackWebhook
from notifier.functions import NotifierDeps, create_functions
from notifier.messages import DecisionLinks
from notifier.routing import Routes
from notifier.subscriptions import ops_alert_loop_guard
from notifier_harness import DECISION_SECRET, GATEWAY_URL, SENT, Harness, invoked, rows_for
from service_kit.db import Database
from service_kit.decision_tokens import read_decision_token
from service_kit.ids import new_id
from shared_events import (
    EscalationReviewRequested,
    InngestFunctionFailed,
    RefundApprovalRequested,
    RiskProfileUpdated,
    StripeChargeRefundFailed,
    SupportDraftCreated,
)


def test_functions_keep_their_ids_triggers_and_order() -> None:
    """The subscription table builds the same functions the engine has synced before."""
    client = mocked.Inngest(app_id="notifier", is_production=False)
    deps = NotifierDeps(
        db=Database("sqlite+aiosqlite://"),  # never connected: only the configs are read
        routes=Routes(),
        channels={},
        decision_links=DecisionLinks(issue=None),
    )
    triggers = {
        fn.local_id: [(t.event, t.expression) for t in fn.get_config("http://n.test").main.triggers]
        for fn in create_functions(client, deps)
    }
    assert triggers == {
        "deliver-notification": [("notifier/notification.deliver", None)],
        "ping-reviewer-on-draft": [("support/draft.created", None)],
        "request-refund-approval": [("refund/approval.requested", None)],
        "request-escalation-review": [("escalation/review.requested", None)],
        "post-refund-failure-to-support": [("stripe/charge.refund.failed", None)],
        "alert-high-risk-profile": [("risk/profile.updated", "event.data.level == 'high'")],
        "alert-ops-on-function-failure": [("inngest/function.failed", None)],
    }
    assert list(triggers) == [
        "deliver-notification",
        "ping-reviewer-on-draft",
        "request-refund-approval",
        "request-escalation-review",
        "post-refund-failure-to-support",
        "alert-high-risk-profile",
        "alert-ops-on-function-failure",
    ]


async def test_draft_created_pings_reviewers(harness: Harness, loop_free_db: Database) -> None:
    draft_id = new_id("drf")
    event = SupportDraftCreated(
        draft_id=draft_id, customer_id="cust_002", ticket_id="tkt_9", kind="reply"
    ).to_event(id=f"draft-created-{draft_id}")
    result = await harness.trigger("ping-reviewer-on-draft", event, {"deliver-local": SENT})
    assert result.status is mocked.Status.COMPLETED, result.error
    [row] = await rows_for(loop_free_db, f"draft-created:{draft_id}")
    assert (row.channel, row.kind, row.status) == ("local", "reviewer_ping", "pending")
    assert draft_id in row.subject and "cust_002" in row.body and "tkt_9" in row.body
    assert result.output["deliveries"] == [SENT]


async def test_refund_approval_request_carries_signed_decision_links(
    harness: Harness, loop_free_db: Database
) -> None:
    request_id = new_id("rr")
    event = RefundApprovalRequested(
        request_id=request_id,
        customer_id="cust_004",
        order_id="ord_1007",
        amount_cents=12000,
        risk_score=0.5,
        risk_level="medium",
    ).to_event(id=f"refund-approval-{request_id}")
    result = await harness.trigger("request-refund-approval", event, {"deliver-slack": SENT})
    assert result.status is mocked.Status.COMPLETED, result.error
    [row] = await rows_for(loop_free_db, f"refund-approval:{request_id}")
    assert row.channel == "slack"
    assert "120.00 USD" in row.subject and "medium" in row.subject
    links = [part.split("|")[0].lstrip("<") for part in row.body.split("\n")[1].split(" | ")]
    assert [urlsplit(link).query for link in links] == ["decision=approve", "decision=reject"]
    url = urlsplit(links[0])
    assert f"{url.scheme}://{url.netloc}" == GATEWAY_URL
    claims = read_decision_token(DECISION_SECRET, url.path.removeprefix("/decisions/"))
    assert (claims.kind, claims.request_id, claims.reviewer) == (
        "refund",
        request_id,
        "support-lead",
    )


async def test_escalation_review_offers_approve_edit_reject(
    harness: Harness, loop_free_db: Database
) -> None:
    escalation_id = new_id("esc")
    event = EscalationReviewRequested(
        escalation_id=escalation_id,
        customer_id="cust_001",
        ticket_id="tkt_1",
        reason="legal threat",
    ).to_event(id=f"escalation-review-{escalation_id}")
    result = await harness.trigger("request-escalation-review", event, {"deliver-slack": SENT})
    assert result.status is mocked.Status.COMPLETED, result.error
    [row] = await rows_for(loop_free_db, f"escalation-review:{escalation_id}")
    for decision in ("approve", "edit", "reject"):
        assert f"?decision={decision}|{decision.capitalize()}>" in row.body
    token = row.body.split("/decisions/")[1].split("?")[0]
    assert read_decision_token(DECISION_SECRET, token).kind == "escalation"


async def test_refund_failure_posts_to_support_once_even_when_replayed(
    harness: Harness, loop_free_db: Database, slack: FakeSlackWebhook
) -> None:
    stripe_event_id = new_id("evt")
    event = StripeChargeRefundFailed(
        stripe_event_id=stripe_event_id,
        charge_id="ch_seed_1001",
        refund_id="re_1",
        customer_id="cust_001",
        amount_cents=1999,
        currency="usd",
        failure_reason="expired_or_canceled_card",
    ).to_event(id=stripe_event_id)
    first = await harness.trigger("post-refund-failure-to-support", event, {"deliver-slack": SENT})
    [row] = await rows_for(loop_free_db, f"refund-failed:{stripe_event_id}")
    # the real delivery, with the payload the subscriber would invoke with
    delivered = await harness.trigger(
        "deliver-notification",
        invoked(
            {
                "notification_id": row.id,
                "destination": "support",
                "channel": "slack",
                "kind": "refund_failed",
                "throttle_key": "slack:support",
            }
        ),
    )
    assert delivered.status is mocked.Status.COMPLETED, delivered.error
    assert delivered.output["outcome"] == "sent"
    # a replay of the whole subscription finds the row sent and does not deliver again
    replay = await harness.trigger("post-refund-failure-to-support", event)
    assert first.status is replay.status is mocked.Status.COMPLETED
    assert replay.output["deliveries"] == [{"notification_id": row.id, "outcome": "already_sent"}]
    [post] = slack.posts
    assert post.path.endswith("/support/fake")
    assert "re_1" in post.text and "expired_or_canceled_card" in post.text
    assert "19.99 USD" in post.text


async def test_high_risk_profile_raises_an_alert(harness: Harness, loop_free_db: Database) -> None:
    customer = "cust_005"
    event = RiskProfileUpdated(
        customer_id=customer,
        score=0.8,
        level="high",
        previous_level="medium",
        reasons=["2 disputes in the last 90 days"],
    ).to_event(id=new_id("risk"))
    result = await harness.trigger("alert-high-risk-profile", event, {"deliver-local": SENT})
    assert result.status is mocked.Status.COMPLETED, result.error
    [row] = await rows_for(loop_free_db, f"risk-high:{customer}:{event.id}")
    assert "0.80" in row.body and "was medium" in row.body and "2 disputes" in row.body


async def test_non_high_profile_update_is_ignored(harness: Harness) -> None:
    # The trigger's `if` filters these out on the engine; the function also refuses them.
    event = RiskProfileUpdated(customer_id="cust_005", score=0.4, level="medium").to_event(
        id=new_id("risk")
    )
    result = await harness.trigger("alert-high-risk-profile", event)
    assert result.output == {"skipped": "level is medium"}


async def test_function_failed_alerts_ops_with_app_function_run_and_error(
    harness: Harness, loop_free_db: Database
) -> None:
    run_id = new_id("run")
    event = inngest.Event(
        name="inngest/function.failed",
        data={
            "function_id": "support-worker-handle-customer-email",
            "run_id": run_id,
            "error": {"name": "OpenAIError", "message": "model unavailable"},
            "event": {"name": "customer/email.received", "data": {"message_id": "msg_1"}},
        },
    )
    result = await harness.trigger("alert-ops-on-function-failure", event, {"deliver-slack": SENT})
    assert result.status is mocked.Status.COMPLETED, result.error
    [row] = await rows_for(loop_free_db, f"ops-alert:{run_id}")
    for fact in (
        "support-worker",
        "handle-customer-email",
        run_id,
        "OpenAIError: model unavailable",
    ):
        assert fact in row.body


def test_failed_ops_alert_delivery_does_not_alert_again() -> None:
    failed_delivery = InngestFunctionFailed(
        function_id="notifier-deliver-notification",
        run_id="r1",
        event={"name": "inngest/function.invoked", "data": {"kind": "ops_alert"}},
    )
    other_delivery = InngestFunctionFailed(
        function_id="notifier-deliver-notification",
        run_id="r2",
        event={"name": "inngest/function.invoked", "data": {"kind": "approval_request"}},
    )
    assert ops_alert_loop_guard(failed_delivery) == "delivering an ops alert failed"
    assert ops_alert_loop_guard(other_delivery) is None
