"""The refund gate of handle-customer-email through inngest.experimental.mocked, against a real
migrated database: auto-approval, a reviewer's approval or rejection, the timeout, a decision
stored before the wait, risk scoring failing safe, an order that is not the customer's, and the
payment provider declining."""

from __future__ import annotations

from typing import Any

from inngest.experimental import mocked
from service_kit.ids import new_id
from service_kit.models import Approval, RefundRequest
from sqlalchemy import select
from support_gate_helpers import (
    HIGH_RISK,
    LOW_RISK,
    gateway_decides,
    refund_decision,
    refund_row,
    refund_waiting_for_a_reviewer,
    reply_draft,
    run_until_the_refund_wait,
)
from support_harness import audit_actions, read


def test_small_low_risk_refund_is_auto_approved_and_issued_once(harness: Any) -> None:
    convo = harness.conversation(
        subject="Refund", body="Please refund {order}.", order_amounts=(20_000, 2_500)
    )
    order_id = convo.order_ids[-1]
    result = harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={f"score-refund-risk-{order_id}": LOW_RISK},
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "issued"}
    refund = refund_row(harness, convo.customer_id)
    assert (refund.status, refund.decided_by, refund.auto_approved) == ("issued", "auto", True)
    actions = audit_actions(harness, convo.customer_id)
    assert actions.count("refund_issued") == 1
    assert "refund_approval_requested" not in actions
    assert harness.client.sent_named("refund/approval.requested") == []
    assert "refund has been issued" in reply_draft(harness, convo.message_id).body_text
    assert harness.deps.payments.entries[refund.id].provider_refund_id == refund.provider_refund_id


def test_refund_timeout_blocks_and_the_reply_says_so(harness: Any) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    order_id = convo.order_ids[-1]
    result = harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={
            f"score-refund-risk-{order_id}": HIGH_RISK,
            f"await-refund-approval-{order_id}": mocked.Timeout,
        },
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "timed_out"}
    blocked = refund_row(harness, convo.customer_id)
    assert (blocked.status, blocked.decided_by) == ("timed_out", "timeout")
    actions = audit_actions(harness, convo.customer_id)
    assert actions.count("refund_blocked") == 1 and "refund_issued" not in actions
    assert "refund_approval_requested" in actions
    assert "not issued" in reply_draft(harness, convo.message_id).body_text
    [asked] = harness.client.sent_named("refund/approval.requested")
    assert asked.id == f"refund-approval-{blocked.id}"
    assert asked.data["risk_level"] == "high"


# -- a reviewer decides ----------------------------------------------------------------------------


def _trigger_with_decision(harness: Any, convo: Any, order_id: str, *, approved: bool) -> Any:
    """Run until the gate's wait, read the created request id, then rerun with the decision
    stubbed (memoized steps are re-executed idempotently by mocked; natural keys hold)."""
    request_id = run_until_the_refund_wait(harness, convo).id
    return harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={
            f"score-refund-risk-{order_id}": HIGH_RISK,
            f"await-refund-approval-{order_id}": refund_decision(request_id, approved),
        },
    )


def test_large_refund_approved_by_a_human_is_issued_exactly_once(harness: Any) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    order_id = convo.order_ids[-1]
    result = _trigger_with_decision(harness, convo, order_id, approved=True)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "issued"}
    refund = refund_row(harness, convo.customer_id)
    assert (refund.status, refund.decided_by) == ("issued", "rev_grace")
    actions = audit_actions(harness, convo.customer_id)
    assert actions.count("refund_issued") == 1 and "refund_blocked" not in actions
    assert actions[-2:] == ["draft_saved", "message_sent"]
    assert list(harness.deps.payments.entries) == [refund.id]
    assert "refund has been issued" in reply_draft(harness, convo.message_id).body_text


def test_rejected_refund_is_blocked_and_never_issued(harness: Any) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    order_id = convo.order_ids[-1]
    result = _trigger_with_decision(harness, convo, order_id, approved=False)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "rejected"}
    refund = refund_row(harness, convo.customer_id)
    assert (refund.status, refund.decided_by, refund.provider_refund_id) == (
        "rejected",
        "rev_grace",
        None,
    )
    actions = audit_actions(harness, convo.customer_id)
    assert actions.count("refund_blocked") == 1 and "refund_issued" not in actions
    assert refund.id not in harness.deps.payments.entries
    assert "declined the refund" in reply_draft(harness, convo.message_id).body_text


def test_decision_stored_before_the_wait_is_not_lost(harness: Any) -> None:
    """The wait times out (the event came before the wait existed) but the gateway had stored
    the approval first: the gate reads it and issues the refund."""
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    order_id = convo.order_ids[-1]

    async def store_approval() -> None:
        async with harness.db.transaction() as session:
            request = (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.customer_id == convo.customer_id)
                )
            ).one()
            session.add(
                Approval(
                    id=new_id("apr"),
                    kind="refund",
                    request_id=request.id,
                    decision="approve",
                    reviewer="rev_early",
                    token_id=new_id("tok"),
                )
            )

    # Pass 1 creates the request and stops at the (unstubbed) wait; then the gateway stores the
    # decision; pass 2 sees the wait time out (its event came too early) and reads the table.
    run_until_the_refund_wait(harness, convo)
    harness.run(store_approval())
    result = harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={
            f"score-refund-risk-{order_id}": HIGH_RISK,
            f"await-refund-approval-{order_id}": mocked.Timeout,
        },
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "issued"}
    refund = refund_row(harness, convo.customer_id)
    assert (refund.status, refund.decided_by) == ("issued", "rev_early")
    assert audit_actions(harness, convo.customer_id).count("refund_issued") == 1


def test_refund_decided_before_the_wait_is_issued_without_waiting(harness: Any) -> None:
    convo, request = refund_waiting_for_a_reviewer(harness)
    order_id = convo.order_ids[-1]
    gateway_decides(harness, "refund", request.id, "approve", reviewer="rev_early")
    # The wait is not stubbed: reaching it would raise UnstubbedStepError.
    result = harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={f"score-refund-risk-{order_id}": HIGH_RISK},
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "issued"}
    [issued] = read(harness, select(RefundRequest).where(RefundRequest.id == request.id))
    assert (issued.status, issued.decided_by) == ("issued", "rev_early")


# -- failures --------------------------------------------------------------------------------------


def test_risk_scoring_failure_fails_safe_to_a_human(harness: Any) -> None:
    """A small refund would be auto-approved, but the risk invoke timed out: a human decides."""
    convo = harness.conversation(
        subject="Refund", body="Please refund {order}.", order_amounts=(20_000, 1_500)
    )
    order_id = convo.order_ids[-1]
    invoke_timeout = {
        "error": {
            "name": "InngestInvokeTimeoutError",
            "message": "Timed out waiting for invoked function to complete",
        }
    }
    result = harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={
            f"score-refund-risk-{order_id}": invoke_timeout,
            f"await-refund-approval-{order_id}": mocked.Timeout,
        },
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    refund = refund_row(harness, convo.customer_id)
    assert refund.auto_approved is False and refund.risk_level == "high"
    assert refund.risk_reasons[0].startswith("risk scoring unavailable")
    [asked] = harness.client.sent_named("refund/approval.requested")
    assert asked.data["request_id"] == refund.id


def test_refund_for_someone_elses_order_is_declined_without_a_request(
    harness: Any, fake_openai: Any
) -> None:
    from support_worker.agent import ModelConfig

    convo = harness.conversation(subject="Refund", body="Refund ord_1001")
    fake_openai.script_tool_call(
        "request_refund", {"order_id": "ord_1001", "reason": "x", "amount_cents": None}, "c1"
    )
    fake_openai.script_reply("Sorry, I could not find that order on your account.")
    harness.replace_deps(
        model=ModelConfig(openai_api_key="sk-test", openai_base_url=fake_openai.base_url)
    )
    result = harness.trigger("handle-customer-email", convo.event())
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {"ord_1001": "invalid"}
    assert "refund_requested" not in audit_actions(harness, convo.customer_id)
    tool_messages = [m for m in fake_openai.chat_requests[-1]["messages"] if m["role"] == "tool"]
    assert "not on the customer's account" in tool_messages[-1]["content"]


def test_provider_declining_an_approved_refund_blocks_it(harness: Any, fake_stripe: Any) -> None:
    from support_worker.payments import StripePayments

    fake_stripe.decline = True
    harness.replace_deps(
        payments=StripePayments("sk_test_fake_key_123", api_base=fake_stripe.origin)
    )
    convo = harness.conversation(
        subject="Refund", body="Please refund {order}.", order_amounts=(20_000, 2_500)
    )
    order_id = convo.order_ids[-1]
    result = harness.trigger(
        "handle-customer-email", convo.event(), stubs={f"score-refund-risk-{order_id}": LOW_RISK}
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {order_id: "failed"}
    refund = refund_row(harness, convo.customer_id)
    assert refund.status == "failed" and refund.provider_refund_id is None
    actions = audit_actions(harness, convo.customer_id)
    assert actions.count("refund_blocked") == 1 and "refund_issued" not in actions
    assert fake_stripe.requests[0]["idempotency_key"] == refund.id
    assert "payment provider declined" in reply_draft(harness, convo.message_id).body_text
