"""handle-customer-email through inngest.experimental.mocked, against a real migrated database:
happy path, refund gate branches (auto, approve, reject, timeout, decision-before-wait),
escalation hand-off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import inngest
import pytest
from inngest.experimental import mocked
from inngest.experimental.mocked.errors import UnstubbedStepError
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Draft, Message, RefundRequest
from sqlalchemy import select

LOW_RISK = {"score": 0.1, "level": "low", "reasons": ["long-standing customer"]}
HIGH_RISK = {"score": 0.8, "level": "high", "reasons": ["many recent refunds"]}


def audit_actions(harness: Any, customer_id: str) -> list[str]:
    async def read() -> list[str]:
        async with harness.db.session() as session:
            rows = await session.scalars(
                select(AuditLog.action)
                .where(AuditLog.customer_id == customer_id)
                .order_by(AuditLog.created_at, AuditLog.id)
            )
            return list(rows.all())

    return harness.run(read())


def refund_row(harness: Any, customer_id: str) -> RefundRequest:
    async def read() -> RefundRequest:
        async with harness.db.session() as session:
            return (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.customer_id == customer_id)
                )
            ).one()

    return harness.run(read())


def reply_draft(harness: Any, message_id: str) -> Draft:
    async def read() -> Draft:
        async with harness.db.session() as session:
            return (
                await session.scalars(select(Draft).where(Draft.message_id == message_id))
            ).one()

    return harness.run(read())


def decision_event(request_id: str, approved: bool) -> inngest.Event:
    return inngest.Event(
        name="refund/approval.decided",
        data={
            "request_id": request_id,
            "approved": approved,
            "decision": "approve" if approved else "reject",
            "reviewer": "rev_grace",
            "approval_id": new_id("apr"),
            "decided_at": datetime.now(UTC).isoformat(),
        },
    )


def test_happy_path_writes_three_audit_rows_in_order_and_saves_the_draft(harness: Any) -> None:
    convo = harness.conversation(subject="Where is my invoice?", body="I cannot find it.")
    result = harness.trigger("handle-customer-email", convo.event())

    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["status"] == "replied"
    assert audit_actions(harness, convo.customer_id) == [
        "message_received",
        "draft_saved",
        "message_sent",
    ]
    draft = reply_draft(harness, convo.message_id)
    assert draft.status == "sent"
    assert draft.body_text.startswith("Hi Test")
    assert "agent_state" not in draft.extra
    [created] = harness.client.sent_named("support/draft.created")
    assert created.id == f"draft-created-{draft.id}"
    assert created.data["kind"] == "reply"


def test_step_outputs_carry_no_email_text(harness: Any) -> None:
    secret = "my card number is 4242 and I live at 1 Secret Lane"
    convo = harness.conversation(subject="Question", body=secret)
    seen: list[Any] = []
    fn = harness.functions["handle-customer-email"]
    original = fn._handler

    async def spy(ctx: inngest.Context) -> Any:
        real_run = ctx.step.run

        async def run(step_id: str, handler: Any, *args: Any, **kwargs: Any) -> Any:
            output = await real_run(step_id, handler, *args, **kwargs)
            seen.append(output)
            return output

        ctx.step.run = run  # type: ignore[method-assign]
        return await original(ctx)

    fn._handler = spy
    try:
        result = harness.trigger("handle-customer-email", convo.event())
    finally:
        fn._handler = original
    assert result.status is mocked.Status.COMPLETED, result.error
    assert seen, "no step outputs observed"
    assert "Secret Lane" not in repr(seen) and "Hi Test" not in repr(seen)


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
    _run_until_the_wait(harness, convo, order_id)
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


def test_escalation_saves_a_pending_draft_and_hands_off_without_sending(harness: Any) -> None:
    convo = harness.conversation(subject="Unacceptable", body="My lawyer will hear of this.")
    result = harness.trigger("handle-customer-email", convo.event())
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["status"] == "escalated"
    assert audit_actions(harness, convo.customer_id) == [
        "message_received",
        "draft_saved",
        "escalation_requested",
    ]
    assert reply_draft(harness, convo.message_id).status == "pending_review"
    [requested] = harness.client.sent_named("customer/escalation.requested")
    assert requested.data["message_id"] == convo.message_id

    async def outbound() -> list[str]:
        async with harness.db.session() as session:
            rows = await session.scalars(
                select(Message.id).where(
                    Message.ticket_id == convo.ticket_id, Message.direction == "outbound"
                )
            )
            return list(rows.all())

    assert harness.run(outbound()) == []


def _trigger_with_decision(harness: Any, convo: Any, order_id: str, *, approved: bool) -> Any:
    """Run until the gate's wait, read the created request id, then rerun with the decision
    stubbed (memoized steps are re-executed idempotently by mocked; natural keys hold)."""
    _run_until_the_wait(harness, convo, order_id)
    request_id = refund_row(harness, convo.customer_id).id
    return harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={
            f"score-refund-risk-{order_id}": HIGH_RISK,
            f"await-refund-approval-{order_id}": decision_event(request_id, approved),
        },
    )


def _run_until_the_wait(harness: Any, convo: Any, order_id: str) -> None:
    with pytest.raises(UnstubbedStepError, match=f"await-refund-approval-{order_id}"):
        harness.trigger(
            "handle-customer-email",
            convo.event(),
            stubs={f"score-refund-risk-{order_id}": HIGH_RISK},
        )


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


def test_openai_agent_pausing_twice_loops_until_no_approvals_remain(
    harness: Any, fake_openai: Any
) -> None:
    """The real OpenAI client path inside the function: the model asks for one refund, is
    resumed, asks for a second, is resumed again, then replies."""
    from support_worker.agent import ModelConfig

    convo = harness.conversation(
        subject="Two refunds", body="Refund both orders", order_amounts=(1_000, 2_000)
    )
    first, second = convo.order_ids
    fake_openai.script_tool_call("look_up_customer", {}, "call_1")
    fake_openai.script_tool_call(
        "request_refund", {"order_id": first, "reason": "dup", "amount_cents": None}, "call_2"
    )
    fake_openai.script_tool_call(
        "request_refund", {"order_id": second, "reason": "dup", "amount_cents": None}, "call_3"
    )
    fake_openai.script_reply("Hi, both refunds are on their way.")
    harness.replace_deps(
        model=ModelConfig(
            openai_api_key="sk-test", openai_base_url=fake_openai.base_url, openai_model="gpt-test"
        )
    )
    result = harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={f"score-refund-risk-{first}": LOW_RISK, f"score-refund-risk-{second}": LOW_RISK},
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["refunds"] == {first: "issued", second: "issued"}
    assert audit_actions(harness, convo.customer_id).count("refund_issued") == 2
    assert reply_draft(harness, convo.message_id).body_text == "Hi, both refunds are on their way."
    assert len(fake_openai.chat_requests) == 4  # each model call made exactly once
    assert fake_openai.chat_script == []


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
