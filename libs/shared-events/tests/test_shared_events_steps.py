"""Typed step helpers, driven through the SDK's own mocked runner (inngest.experimental.mocked),
and the `if` expression of typed waits, evaluated with a real CEL implementation."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import celpy
import inngest
import pytest
from inngest.experimental import mocked
from shared_events import (
    SCORE_REFUND_RISK,
    RefundApprovalDecided,
    RefundApprovalRequested,
    RefundRiskInput,
    TicketResolved,
)
from shared_events.refs import InvokeInputError, invoke
from shared_events.steps import match_expression, send_event, send_events, wait_for_event

client = mocked.Inngest(app_id="shared-events-test", is_production=False)


@client.create_function(fn_id="refund-gate", trigger=RefundApprovalRequested.trigger(), retries=0)
async def refund_gate(ctx: inngest.Context) -> dict[str, Any]:
    request = RefundApprovalRequested.from_event(ctx.event)
    assessment = await invoke(
        ctx.step,
        "score-risk",
        SCORE_REFUND_RISK,
        RefundRiskInput(
            request_id=request.request_id,
            customer_id=request.customer_id,
            order_id=request.order_id,
            amount_cents=request.amount_cents,
        ),
        timeout=datetime.timedelta(minutes=1),
    )
    sent = await send_events(
        ctx.step,
        "emit-resolved",
        [
            (
                f"ticket-resolved-{request.request_id}",
                TicketResolved(
                    ticket_id="tkt_1", customer_id=request.customer_id, resolved_by="gate"
                ),
            )
        ],
    )
    decision = await wait_for_event(
        ctx.step,
        "wait-decision",
        RefundApprovalDecided,
        match={"request_id": request.request_id},
        timeout=datetime.timedelta(hours=4),
    )
    return {
        "level": assessment.level,
        "sent": len(sent),
        "decision": None if decision is None else decision.decision,
    }


REQUEST = RefundApprovalRequested(
    request_id="rfd_01",
    customer_id="cust_005",
    order_id="ord_1011",
    amount_cents=18900,
    risk_score=0.7,
    risk_level="high",
)
DECISION = {
    "request_id": "rfd_01",
    "approved": True,
    "decision": "approve",
    "reviewer": "rev_alice",
    "approval_id": "apr_01",
    "decided_at": "2026-11-21T11:00:00Z",
}
ASSESSMENT = {"score": 0.7, "level": "high", "reasons": ["young account"]}


@client.create_function(fn_id="notify", trigger=TicketResolved.trigger(), retries=0)
async def notify(ctx: inngest.Context) -> list[str]:
    resolved = TicketResolved.from_event(ctx.event)
    return await send_event(
        ctx.step, "emit-one", resolved, id=f"ticket-resolved-{resolved.ticket_id}-again"
    )


def test_typed_send_event_runs_as_a_step() -> None:
    event = TicketResolved(ticket_id="tkt_9", customer_id="cust_001", resolved_by="agent")
    result = mocked.trigger(notify, event.to_event(id="e-9"), client)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert isinstance(result.output, list) and result.output


def test_bad_trigger_data_fails_the_run_naming_the_field() -> None:
    event = inngest.Event(name="ticket/resolved", data={"ticket_id": "", "customer_id": "c"})
    result = mocked.trigger(notify, event, client)
    assert result.status is mocked.Status.FAILED
    assert "data.ticket_id" in str(result.error)


def _run(stubs: dict[str, object]) -> Any:
    return mocked.trigger(
        refund_gate, REQUEST.to_event(id="refund-approval-rfd_01"), client, step_stubs=stubs
    )


def test_typed_flow_with_decision() -> None:
    result = _run(
        {
            "score-risk": ASSESSMENT,
            "wait-decision": inngest.Event(name=RefundApprovalDecided.name, data=DECISION),
        }
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output == {"level": "high", "sent": 1, "decision": "approve"}


def test_typed_wait_returns_none_on_timeout() -> None:
    result = _run({"score-risk": ASSESSMENT, "wait-decision": mocked.Timeout})
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["decision"] is None


def test_malformed_invoke_result_fails_the_run_naming_the_field() -> None:
    result = _run({"score-risk": {"score": 7, "level": "high"}, "wait-decision": mocked.Timeout})
    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, inngest.NonRetriableError)
    assert "result.score" in str(result.error)


def test_malformed_resumed_event_fails_the_run_naming_the_field() -> None:
    bad = DECISION | {"decision": "perhaps"}
    result = _run(
        {
            "score-risk": ASSESSMENT,
            "wait-decision": inngest.Event(name=RefundApprovalDecided.name, data=bad),
        }
    )
    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, inngest.NonRetriableError)
    assert "data.decision" in str(result.error)


def _matches(expression: str, data: dict[str, Any]) -> bool:
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    return bool(program.evaluate({"async": celpy.json_to_cel({"data": data})}))


@pytest.mark.parametrize(
    "request_id",
    ["rfd_01", 'a" || true || "b', "back\\slash", "quote'single", "unicode-é-✓"],
)
def test_wait_expression_matches_exactly_that_value(request_id: str) -> None:
    expression = match_expression(RefundApprovalDecided, {"request_id": request_id})
    assert expression == f"async.data.request_id == {json.dumps(request_id)}"
    assert _matches(expression, {"request_id": request_id})
    assert not _matches(expression, {"request_id": "something-else"})


def test_wait_expression_combines_fields_and_literals() -> None:
    expression = match_expression(RefundApprovalDecided, {"request_id": "rfd_9", "approved": True})
    assert expression == 'async.data.request_id == "rfd_9" && async.data.approved == true'
    assert _matches(expression, {"request_id": "rfd_9", "approved": True})
    assert not _matches(expression, {"request_id": "rfd_9", "approved": False})


def test_wait_expression_refuses_unknown_fields_and_empty_matches() -> None:
    with pytest.raises(KeyError, match="no field 'requestId'"):
        match_expression(RefundApprovalDecided, {"requestId": "x"})
    with pytest.raises(ValueError, match="at least one field"):
        match_expression(RefundApprovalDecided, {})


def test_function_refs_validate_input_and_know_their_slug() -> None:
    assert SCORE_REFUND_RISK.composite_id == "risk-worker-score-refund-risk"
    parsed = SCORE_REFUND_RISK.parse_input(
        {"request_id": "r", "customer_id": "c", "order_id": "o", "amount_cents": 5, "_inngest": {}}
    )
    assert parsed.amount_cents == 5
    with pytest.raises(InvokeInputError, match=re.escape("data.amount_cents")):
        SCORE_REFUND_RISK.parse_input(
            {"request_id": "r", "customer_id": "c", "order_id": "o", "amount_cents": 0}
        )


async def test_send_events_with_nothing_to_send_is_a_no_op() -> None:
    class NoStep:
        async def send_event(self, *_args: object) -> list[str]:  # pragma: no cover
            raise AssertionError("must not be called")

    assert await send_events(NoStep(), "fan-out", []) == []  # type: ignore[arg-type]
