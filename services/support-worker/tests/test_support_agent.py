"""The agent on its own: offline model decisions, pause on refund, serialized resume, and the real
OpenAI client path against the local fake server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support_worker.agent import (
    REFUND_ISSUED_PREFIX,
    CustomerProfile,
    EmailForAgent,
    ModelConfig,
    OrderSummary,
    RefundDecision,
    SimilarCase,
    compose_input,
    resume_agent,
    run_agent,
)

OFFLINE = ModelConfig()


class StaticBackend:
    """A plain in-memory backend: the agent's port, not the system of record."""

    def __init__(self) -> None:
        self.refund_outcome_calls: list[str] = []
        self.similar_queries: list[str] = []

    async def customer_profile(self) -> CustomerProfile:
        return CustomerProfile(
            customer_id="cust_001",
            name="Ada Lovelace",
            tier="enterprise",
            orders=[
                OrderSummary(order_id="ord_1001", amount_cents=4999, currency="usd", status="paid")
            ],
        )

    async def similar_cases(self, query: str, limit: int) -> list[SimilarCase]:
        self.similar_queries.append(query)
        return [SimilarCase(ticket_id="tkt_9", summary="late delivery resolved", score=0.9)]

    async def refund_outcome(self, order_id: str) -> str:
        self.refund_outcome_calls.append(order_id)
        return f"{REFUND_ISSUED_PREFIX}: 49.99 USD for {order_id}"


def email(subject: str, body: str) -> str:
    return compose_input(
        EmailForAgent(customer_id="cust_001", ticket_id="tkt_1", subject=subject, body=body)
    )


async def test_offline_general_email_gets_a_reply_after_looking_at_similar_cases() -> None:
    backend = StaticBackend()
    outcome = await run_agent(email("Where is my parcel?", "It has not arrived."), backend, OFFLINE)
    assert outcome.status == "done"
    assert outcome.reply is not None and outcome.reply.startswith("Hi Ada")
    assert backend.similar_queries == ["Where is my parcel?"]
    assert outcome.state is None and outcome.pending_refunds == []


async def test_offline_refund_pauses_without_refunding_then_resumes_approved() -> None:
    backend = StaticBackend()
    outcome = await run_agent(
        email("Refund please", "Please refund order ord_1001, it broke."), backend, OFFLINE
    )
    assert outcome.status == "needs_approval"
    assert [intent.order_id for intent in outcome.pending_refunds] == ["ord_1001"]
    assert backend.refund_outcome_calls == []  # paused, the tool did not run
    assert outcome.state is not None
    json.loads(outcome.state)  # a plain JSON string, storable anywhere

    call_id = outcome.pending_refunds[0].call_id
    resumed = await resume_agent(
        outcome.state, {call_id: RefundDecision(approved=True)}, backend, OFFLINE
    )
    assert resumed.status == "done"
    assert backend.refund_outcome_calls == ["ord_1001"]
    assert resumed.reply is not None and "refund has been issued" in resumed.reply


async def test_offline_rejected_refund_reply_explains_the_reason() -> None:
    backend = StaticBackend()
    outcome = await run_agent(email("Refund", "I want a refund for ord_1001"), backend, OFFLINE)
    assert outcome.state is not None
    decisions = {
        outcome.pending_refunds[0].call_id: RefundDecision(
            approved=False, message="the order is outside the refund window"
        )
    }
    resumed = await resume_agent(outcome.state, decisions, backend, OFFLINE)
    assert backend.refund_outcome_calls == []
    assert resumed.reply is not None
    assert "outside the refund window" in resumed.reply


async def test_resume_refuses_a_paused_call_without_a_decision() -> None:
    backend = StaticBackend()
    outcome = await run_agent(email("Refund", "refund ord_1001 now"), backend, OFFLINE)
    assert outcome.state is not None
    with pytest.raises(ValueError, match="no decision"):
        await resume_agent(outcome.state, {}, backend, OFFLINE)


async def test_offline_refund_for_an_order_the_customer_does_not_own_asks_for_the_number() -> None:
    backend = StaticBackend()
    outcome = await run_agent(email("Refund", "refund ord_9999 please"), backend, OFFLINE)
    assert outcome.status == "done"
    assert outcome.reply is not None and "order number" in outcome.reply


async def test_offline_legal_threat_escalates() -> None:
    backend = StaticBackend()
    outcome = await run_agent(
        email("Unacceptable", "This is unacceptable, my lawyer will call you."), backend, OFFLINE
    )
    assert outcome.status == "done"
    assert len(outcome.escalation_reasons) == 1
    assert outcome.reply is not None and "senior member" in outcome.reply


async def test_openai_client_path_pauses_and_resumes_against_the_fake_server(
    fake_openai: Any,
) -> None:
    fake_openai.script_tool_call("look_up_customer", {}, "call_a")
    fake_openai.script_tool_call(
        "request_refund",
        {"order_id": "ord_1001", "reason": "broken", "amount_cents": None},
        "call_b",
    )
    fake_openai.script_reply("Hi Ada, your refund was issued.")
    config = ModelConfig(
        openai_api_key="sk-test", openai_base_url=fake_openai.base_url, openai_model="gpt-test"
    )
    backend = StaticBackend()

    outcome = await run_agent(email("Refund", "refund ord_1001"), backend, config)
    assert outcome.status == "needs_approval"
    assert outcome.pending_refunds[0].call_id == "call_b"
    assert len(fake_openai.chat_requests) == 2
    first = fake_openai.chat_requests[0]
    assert first["model"] == "gpt-test"
    assert {tool["function"]["name"] for tool in first["tools"]} == {
        "look_up_customer",
        "find_similar_cases",
        "request_refund",
        "escalate_to_senior_reviewer",
    }

    assert outcome.state is not None
    resumed = await resume_agent(
        outcome.state, {"call_b": RefundDecision(approved=True)}, backend, config
    )
    assert resumed.reply == "Hi Ada, your refund was issued."
    assert backend.refund_outcome_calls == ["ord_1001"]
    # The resumed request carried the tool result of the approved refund back to the model.
    last_messages = fake_openai.chat_requests[-1]["messages"]
    tool_results = [m for m in last_messages if m.get("role") == "tool"]
    assert any(REFUND_ISSUED_PREFIX in str(m.get("content")) for m in tool_results)
