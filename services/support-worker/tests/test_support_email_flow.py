"""handle-customer-email through inngest.experimental.mocked, against a real migrated database:
the happy path, what step outputs may carry, the escalation hand-off, and the real OpenAI client
pausing the agent twice. The refund gate's branches: `test_support_refund_gate.py`."""

from __future__ import annotations

from typing import Any

import inngest
from inngest.experimental import mocked
from service_kit.models import Message
from sqlalchemy import select
from support_gate_helpers import LOW_RISK, reply_draft
from support_harness import audit_actions


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
