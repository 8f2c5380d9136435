"""The human gates through inngest.experimental.mocked, around the gateway's decisions: a decision
stored before the wait is read without waiting, the timeout loses to a decision recorded in the
meantime, a cancelled gate closes its rows; and the records the gates leave (outbound from / to,
the edit's audit detail, the refund-failed draft's `draft_saved`)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import inngest
import pytest
from inngest.experimental import mocked
from inngest.experimental.mocked.errors import UnstubbedStepError
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Customer, Escalation, Message, RefundRequest
from sqlalchemy import select, update
from support_worker.repositories import DEFAULT_SUPPORT_ADDRESS

HIGH_RISK = {"score": 0.8, "level": "high", "reasons": ["many recent refunds"]}


def read(harness: Any, query: Any) -> list[Any]:
    async def run() -> list[Any]:
        async with harness.db.session() as session:
            return list((await session.scalars(query)).all())

    return harness.run(run())


def audit_rows(harness: Any, customer_id: str) -> list[AuditLog]:
    return read(
        harness,
        select(AuditLog)
        .where(AuditLog.customer_id == customer_id)
        .order_by(AuditLog.created_at, AuditLog.id),
    )


def gateway_decides(
    harness: Any,
    kind: str,
    request_id: str,
    decision: str,
    *,
    edited: str | None = None,
    reviewer: str = "rev_ada",
) -> str:
    """What the gateway writes in one transaction: the approval, and the request row moved out
    of its waiting status (only while it waits)."""
    approval_id = new_id("apr")
    statuses = {"approve": "approved", "edit": "edited", "reject": "rejected"}

    async def write() -> None:
        async with harness.db.transaction() as session:
            if kind == "refund":
                statement = (
                    update(RefundRequest)
                    .where(
                        RefundRequest.id == request_id,
                        RefundRequest.status.in_(("pending", "awaiting_approval")),
                    )
                    .values(status=statuses[decision], decided_by=reviewer)
                )
            else:
                statement = (
                    update(Escalation)
                    .where(Escalation.id == request_id, Escalation.status == "pending")
                    .values(
                        status=statuses[decision],
                        decision=statuses[decision],
                        reviewer=reviewer,
                        final_text=edited,
                        decided_at=datetime.now(UTC),
                    )
                )
            changed = await session.execute(statement)
            assert changed.rowcount == 1, "the request was not waiting"  # type: ignore[attr-defined]
            session.add(
                Approval(
                    id=approval_id,
                    kind=kind,
                    request_id=request_id,
                    decision=decision,
                    reviewer=reviewer,
                    edited_text=edited,
                    token_id=new_id("tok"),
                )
            )

    harness.run(write())
    return approval_id


def escalate(harness: Any) -> tuple[Any, inngest.Event]:
    convo = harness.conversation(subject="Unacceptable", body="This is unacceptable. Lawyer!")
    result = harness.trigger("handle-customer-email", convo.event())
    assert result.status is mocked.Status.COMPLETED, result.error
    [event] = harness.client.sent_named("customer/escalation.requested")
    harness.client.sent.clear()
    return convo, event


def refund_waiting_for_a_reviewer(harness: Any) -> tuple[Any, RefundRequest]:
    """Run the email flow until the refund gate's wait (not stubbed, so the run stops there)."""
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    order_id = convo.order_ids[-1]
    with pytest.raises(UnstubbedStepError, match=f"await-refund-approval-{order_id}"):
        harness.trigger(
            "handle-customer-email",
            convo.event(),
            stubs={f"score-refund-risk-{order_id}": HIGH_RISK},
        )
    [request] = read(
        harness, select(RefundRequest).where(RefundRequest.customer_id == convo.customer_id)
    )
    assert request.status == "awaiting_approval"
    return convo, request


def cancelled(function: str, run_id: str, trigger: inngest.Event) -> inngest.Event:
    """`inngest/function.cancelled` in the engine's shape (finalize: function_id is the slug)."""
    data = {"name": trigger.name, "data": trigger.data, "id": trigger.id}
    return inngest.Event(
        name="inngest/function.cancelled",
        id=run_id,
        data={
            "function_id": f"support-worker-{function}",
            "run_id": run_id,
            "event": data,
            "events": [data],
            "_inngest": {"status": "Cancelled"},
        },
    )


# -- a decision stored before the wait ---------------------------------------------------------


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


# -- cancelled gates -------------------------------------------------------------------------------


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


# -- records -----------------------------------------------------------------------------------


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


def test_the_refund_failed_follow_up_is_audited_draft_saved_once(harness: Any) -> None:
    convo = harness.conversation(
        subject="Refund", body="Refund {order} please", order_amounts=(20_000, 2_500)
    )
    order_id = convo.order_ids[-1]
    harness.trigger(
        "handle-customer-email",
        convo.event(),
        stubs={f"score-refund-risk-{order_id}": {"score": 0.1, "level": "low"}},
    )
    [refund] = read(harness, select(RefundRequest).where(RefundRequest.order_id == order_id))
    failed = inngest.Event(
        name="stripe/charge.refund.failed",
        data={
            "stripe_event_id": f"evt_{order_id}",
            "charge_id": f"ch_{order_id}",
            "refund_id": refund.provider_refund_id,
            "customer_id": convo.customer_id,
            "amount_cents": 2500,
            "currency": "usd",
            "failure_reason": "expired_card",
        },
    )
    before = [a.key for a in audit_rows(harness, convo.customer_id) if a.action == "draft_saved"]
    for _ in range(2):  # a re-delivered webhook writes no second row
        result = harness.trigger("handle-refund-failed", failed)
        assert result.status is mocked.Status.COMPLETED, result.error
    draft_id = result.output["draft_id"]
    saved = [
        a
        for a in audit_rows(harness, convo.customer_id)
        if a.action == "draft_saved" and a.key not in before
    ]
    assert [(a.key, a.payload["draft_id"], a.payload["kind"]) for a in saved] == [
        (f"draft-saved-{draft_id}", draft_id, "refund_failed")
    ]
