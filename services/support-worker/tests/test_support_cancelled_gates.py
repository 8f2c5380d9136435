"""close-cancelled-gates through inngest.experimental.mocked: a cancelled gate run (bulk cancel,
REST cancel) ends its waiting refund or escalation `cancelled`, audited once; a gate that already
ended stays as it ended."""

from __future__ import annotations

from typing import Any

from inngest.experimental import mocked
from service_kit.ids import new_id
from service_kit.models import Escalation, RefundRequest
from sqlalchemy import select
from support_gate_helpers import cancelled, escalate, gateway_decides, refund_waiting_for_a_reviewer
from support_harness import audit_rows, read


def test_a_cancelled_escalation_gate_closes_its_escalation_once(harness: Any) -> None:
    convo, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    notice = cancelled("escalate-with-human-approval", new_id("run"), event)
    for _ in range(2):  # a re-delivered notice changes nothing more
        result = harness.trigger("close-cancelled-gates", notice)
        assert result.status is mocked.Status.COMPLETED, result.error
    [row] = read(harness, select(Escalation).where(Escalation.id == escalation_id))
    assert row.status == "cancelled" and row.posted_message_id is None
    actions = [a.action for a in audit_rows(harness, convo.customer_id)]
    assert actions.count("escalation_cancelled") == 1


def test_a_cancelled_email_run_closes_its_waiting_refund(harness: Any) -> None:
    convo, request = refund_waiting_for_a_reviewer(harness)
    run_id = new_id("run")
    result = harness.trigger(
        "close-cancelled-gates", cancelled("handle-customer-email", run_id, convo.event())
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output == {"cancelled_run_id": run_id, "closed": [request.id]}
    [row] = read(harness, select(RefundRequest).where(RefundRequest.id == request.id))
    assert row.status == "cancelled" and row.provider_refund_id is None
    [audit] = [a for a in audit_rows(harness, convo.customer_id) if a.action == "refund_cancelled"]
    assert audit.payload["request_id"] == request.id and audit.run_id == run_id


def test_cancelling_an_ended_gate_leaves_it_as_it_ended(harness: Any) -> None:
    convo, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    gateway_decides(harness, "escalation", escalation_id, "reject")
    harness.trigger(
        "close-cancelled-gates",
        cancelled("escalate-with-human-approval", new_id("run"), event),
    )
    [row] = read(harness, select(Escalation).where(Escalation.id == escalation_id))
    assert row.status == "rejected"
    assert "escalation_cancelled" not in [a.action for a in audit_rows(harness, convo.customer_id)]
