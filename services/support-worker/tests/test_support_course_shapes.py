"""The course's hand-sent shapes (002 D2/D4 inline email, 002 D5 decision by customer) and the
development-only model input / output in the agent steps' outputs (001 D8-A), through
inngest.experimental.mocked against a real migrated database."""

from __future__ import annotations

import dataclasses
from typing import Any

import inngest
import pytest
from inngest.experimental import mocked
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Draft, Message, RefundRequest
from sqlalchemy import select
from support_worker.functions import create_functions
from support_worker.settings import SupportSettings


def _rows(harness: Any, model: Any, *where: Any) -> list[Any]:
    async def read() -> list[Any]:
        async with harness.db.session() as session:
            return list((await session.scalars(select(model).where(*where))).all())

    return harness.run(read())


def _spy_step_outputs(harness: Any, fn_id: str, functions: dict[str, Any]) -> dict[str, Any]:
    """Wrap the function's handler so every step.run output is recorded by step id."""
    seen: dict[str, Any] = {}
    fn = functions[fn_id]
    original = fn._handler

    async def spy(ctx: inngest.Context) -> Any:
        real_run = ctx.step.run

        async def run(step_id: str, handler: Any, *args: Any, **kwargs: Any) -> Any:
            output = await real_run(step_id, handler, *args, **kwargs)
            seen[step_id] = output
            return output

        ctx.step.run = run  # type: ignore[method-assign]
        return await original(ctx)

    fn._handler = spy
    return seen


SECRET_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"


@pytest.mark.parametrize("development", [True, False], ids=["development", "production"])
def test_agent_step_shows_redacted_model_io_only_in_development(
    harness: Any, development: bool
) -> None:
    body = f"How do I add two seats? Write to me at grace.h@example.org, my key is {SECRET_KEY}"
    convo = harness.conversation(subject="Seats", body=body)
    deps = dataclasses.replace(
        harness.deps, flow=dataclasses.replace(harness.deps.flow, trace_model_io=development)
    )
    functions = {fn.local_id: fn for fn in create_functions(harness.client, deps)}
    seen = _spy_step_outputs(harness, "handle-customer-email", functions)
    result = mocked.trigger(
        functions["handle-customer-email"], convo.event(), harness.client, step_stubs={}
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    agent_step = seen["run-agent"]
    assert agent_step["draft_id"]
    text = repr(seen)
    assert "grace.h@example.org" not in text and SECRET_KEY not in text
    if development:
        assert "How do I add two seats?" in agent_step["model_input"]
        assert "[email]" in agent_step["model_input"]
        assert "[secret]" in agent_step["model_input"]
        assert agent_step["model_output"].startswith("Hi Test")
    else:
        assert "model_input" not in agent_step and "model_output" not in agent_step
        assert "How do I add two seats?" not in text and "Hi Test" not in text


def test_resume_step_shows_the_decision_and_the_answer_in_development(harness: Any) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    order_id = convo.order_ids[-1]
    deps = dataclasses.replace(
        harness.deps, flow=dataclasses.replace(harness.deps.flow, trace_model_io=True)
    )
    functions = {fn.local_id: fn for fn in create_functions(harness.client, deps)}
    seen = _spy_step_outputs(harness, "handle-customer-email", functions)
    decided = inngest.Event(
        name="refund/approval.decided",
        data={
            "request_id": "x",
            "approved": True,
            "decision": "approve",
            "reviewer": "rev_grace",
            "approval_id": new_id("apr"),
            "decided_at": "2026-12-06T10:00:00+00:00",
        },
    )
    result = mocked.trigger(
        functions["handle-customer-email"],
        convo.event(),
        harness.client,
        step_stubs={
            f"score-refund-risk-{order_id}": {"score": 0.8, "level": "high", "reasons": ["big"]},
            f"await-refund-approval-{order_id}": decided,
        },
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert "request_refund" in seen["run-agent"]["model_output"]
    assert "approved" in seen["resume-agent-1"]["model_input"]
    assert "refund has been issued" in seen["resume-agent-1"]["model_output"]


@pytest.mark.parametrize(("environment", "traced"), [("development", True), ("test", True)])
def test_settings_trace_model_io_outside_production(environment: str, traced: bool) -> None:
    settings = SupportSettings(environment=environment, database_url="sqlite+aiosqlite://")
    assert settings.flow_config().trace_model_io is traced


def test_production_settings_never_trace_model_io() -> None:
    settings = SupportSettings.model_construct(environment="production")
    assert SupportSettings.flow_config(settings).trace_model_io is False


def test_inline_email_is_stored_once_and_answered_like_a_gateway_email(harness: Any) -> None:
    convo = harness.conversation(subject="unused", body="unused")
    event_id = f"course-{new_id('evt')}"
    event = inngest.Event(
        name="customer/email.received",
        data={"email_text": "How do I add two seats?", "customer_id": convo.customer_id},
        id=event_id,
    )
    first = harness.trigger("handle-customer-email", event)
    again = harness.trigger("handle-customer-email", event)  # a retry / replay from the top
    assert first.status is mocked.Status.COMPLETED, first.error
    assert again.status is mocked.Status.COMPLETED, again.error
    [message] = _rows(harness, Message, Message.provider_message_id == f"inline-{event_id}")
    assert (message.customer_id, message.direction, message.body_text) == (
        convo.customer_id,
        "inbound",
        "How do I add two seats?",
    )
    [draft] = _rows(harness, Draft, Draft.message_id == message.id)
    assert draft.status == "sent" and draft.body_text.startswith("Hi Test")
    actions = [
        row.action
        for row in _rows(harness, AuditLog, AuditLog.customer_id == convo.customer_id)
        if row.payload.get("message_id") == message.id or "message" in row.action
    ]
    assert actions.count("message_received") == 1


def test_inline_email_of_an_unknown_customer_fails_without_retries(harness: Any) -> None:
    event = inngest.Event(
        name="customer/email.received",
        data={"email_text": "hello", "customer_id": "cust_nobody"},
        id=new_id("evt"),
    )
    result = harness.trigger("handle-customer-email", event)
    assert result.status is mocked.Status.FAILED
    assert "cust_nobody" in str(result.error)


def _pending_refunds(harness: Any, convo: Any, count: int) -> list[str]:
    async def create() -> list[str]:
        ids = []
        async with harness.db.transaction() as session:
            for index in range(count):
                request_id = new_id("rfr")
                session.add(
                    RefundRequest(
                        id=request_id,
                        idempotency_key=f"test-{request_id}",
                        customer_id=convo.customer_id,
                        order_id=convo.order_ids[index % len(convo.order_ids)],
                        amount_cents=20_000,
                        status="awaiting_approval",
                    )
                )
                ids.append(request_id)
        return ids

    return harness.run(create())


def _hand_sent_decision(data: dict[str, Any]) -> inngest.Event:
    return inngest.Event(name="refund/approval.decided", data=data, id=new_id("evt"))


def test_decision_by_customer_applies_to_their_single_pending_refund(harness: Any) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order}")
    [request_id] = _pending_refunds(harness, convo, 1)
    result = harness.trigger(
        "apply-hand-sent-refund-decision",
        _hand_sent_decision({"approved": True, "customer_id": convo.customer_id}),
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output == {"request_id": request_id, "approved": True}
    [approval] = _rows(harness, Approval, Approval.request_id == request_id)
    assert (approval.kind, approval.decision, approval.reviewer) == (
        "refund",
        "approve",
        "hand-sent-event",
    )
    [published] = [
        e
        for e in harness.client.sent_named("refund/approval.decided")
        if e.data["request_id"] == request_id
    ]
    assert published.id == f"refund-decision-{request_id}"
    assert published.data["approval_id"] == approval.id and published.data["decision"] == "approve"


@pytest.mark.parametrize("pending", [0, 2], ids=["none-pending", "two-pending"])
def test_decision_by_customer_without_a_single_pending_refund_is_refused_and_audited(
    harness: Any, pending: int
) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order}")
    request_ids = _pending_refunds(harness, convo, pending)
    result = harness.trigger(
        "apply-hand-sent-refund-decision",
        _hand_sent_decision({"approved": False, "customer_id": convo.customer_id}),
    )
    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, inngest.NonRetriableError)
    expected = "no refund waiting" if pending == 0 else "2 refunds waiting"
    assert expected in str(result.error)
    [audited] = _rows(
        harness,
        AuditLog,
        AuditLog.customer_id == convo.customer_id,
        AuditLog.action == "refund_decision_unmatched",
    )
    assert expected in audited.payload["reason"]
    assert _rows(harness, Approval, Approval.request_id.in_(request_ids or ["-"])) == []


def test_decision_naming_its_request_wins(harness: Any) -> None:
    convo = harness.conversation(subject="Refund", body="Refund {order}")
    first, second = _pending_refunds(harness, convo, 2)
    result = harness.trigger(
        "apply-hand-sent-refund-decision",
        _hand_sent_decision({"approved": False, "request_id": second}),
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    [approval] = _rows(harness, Approval, Approval.request_id == second)
    assert approval.decision == "reject"
    assert _rows(harness, Approval, Approval.request_id == first) == []
