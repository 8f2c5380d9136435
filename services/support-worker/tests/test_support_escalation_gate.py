"""escalate-with-human-approval through inngest.experimental.mocked, against a real migrated
database: approve / edit / reject / timeout, a decision stored before the wait (read without
waiting), the timeout racing a decision recorded in the meantime, and what an edited reply
leaves (outbound from / to, the edit's audit detail)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from inngest.experimental import mocked
from service_kit.models import Customer, Escalation, Message, RefundRequest
from sqlalchemy import select
from support_gate_helpers import (
    escalate,
    escalation_decision,
    gateway_decides,
    refund_waiting_for_a_reviewer,
    store_approval,
)
from support_harness import actions_for, audit_rows, outbound_bodies, read
from support_worker.functions.escalate_with_human_approval import NO_REVIEW_HEADER
from support_worker.repositories import DEFAULT_SUPPORT_ADDRESS


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
        stubs={"wait-for-decision": escalation_decision(escalation_id, kind, approval_id)},
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
    [escalation] = read(harness, select(Escalation).where(Escalation.id == escalation_id))
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


def test_escalation_decided_before_the_wait_is_posted_without_waiting(harness: Any) -> None:
    convo, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    gateway_decides(harness, "escalation", escalation_id, "approve")
    result = harness.trigger("escalate-with-human-approval", event)  # no stub for the wait
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output == {
        "escalation_id": escalation_id,
        "outcome": "approved",
        "decided_via": "stored-before-wait",
        "posted": True,
    }
    assert [(a.action, a.actor) for a in audit_rows(harness, convo.customer_id)][-2:] == [
        ("escalation_approved", "rev_ada"),
        ("message_sent", "support-worker"),
    ]


# -- the timeout races a decision ------------------------------------------------------------------


def test_the_timeout_claims_a_waiting_escalation_and_a_later_decision_cannot(
    harness: Any,
) -> None:
    _, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    assert harness.run(harness.deps.repo.close_escalation_wait(escalation_id)) is None
    [row] = read(harness, select(Escalation).where(Escalation.id == escalation_id))
    assert (row.status, row.reviewer) == ("timed_out", "timeout")
    with pytest.raises(AssertionError, match="not waiting"):
        gateway_decides(harness, "escalation", escalation_id, "approve")


def test_a_decision_recorded_before_the_timeout_claim_wins(harness: Any) -> None:
    # The reviewer decided after the gate's first read, while the wait was being registered:
    # the event was missed, the wait timed out, and the claim finds the decision instead.
    _, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    approval_id = gateway_decides(harness, "escalation", escalation_id, "reject")
    won = harness.run(harness.deps.repo.close_escalation_wait(escalation_id))
    assert won == ("reject", "rev_ada", approval_id)
    [row] = read(harness, select(Escalation).where(Escalation.id == escalation_id))
    assert row.status == "rejected"

    _, request = refund_waiting_for_a_reviewer(harness)
    gateway_decides(harness, "refund", request.id, "approve")
    assert harness.run(harness.deps.repo.close_refund_wait(request.id)) == ("approve", "rev_ada")
    [row] = read(harness, select(RefundRequest).where(RefundRequest.id == request.id))
    assert row.status == "approved"


# -- records ---------------------------------------------------------------------------------------


def test_an_edited_escalation_is_sent_from_support_to_the_customer_and_audited(
    harness: Any,
) -> None:
    convo, event = escalate(harness)
    escalation_id = event.data["escalation_id"]
    edited = "Hi, a senior colleague here: we are on it."
    approval_id = gateway_decides(harness, "escalation", escalation_id, "edit", edited=edited)
    result = harness.trigger("escalate-with-human-approval", event)
    assert result.status is mocked.Status.COMPLETED, result.error
    [customer] = read(harness, select(Customer).where(Customer.id == convo.customer_id))
    [sent] = read(
        harness,
        select(Message).where(
            Message.ticket_id == convo.ticket_id, Message.direction == "outbound"
        ),
    )
    assert (sent.from_address, sent.to_address) == (DEFAULT_SUPPORT_ADDRESS, customer.email)
    assert sent.body_text == edited
    [audit] = [a for a in audit_rows(harness, convo.customer_id) if a.action == "escalation_edited"]
    assert audit.payload["approval_id"] == approval_id
    assert audit.payload["edited_text"] == {
        "stored_in": "escalations.final_text",
        "chars": len(edited),
        "sha256": hashlib.sha256(edited.encode()).hexdigest(),
    }
