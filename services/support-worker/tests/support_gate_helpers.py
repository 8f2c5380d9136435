"""The human gates driven through the mocked harness: runs stopped at a gate's wait, the
decisions a reviewer makes (as events, or written as the gateway writes them), the engine's
cancellation notice, and the records the tests read back."""

from __future__ import annotations

from datetime import UTC, datetime

import inngest
import pytest
from inngest.experimental import mocked
from inngest.experimental.mocked.errors import UnstubbedStepError
from service_kit.ids import new_id
from service_kit.models import Approval, Draft, Escalation, RefundRequest
from sqlalchemy import select, update
from support_harness import Conversation, Harness, read

LOW_RISK = {"score": 0.1, "level": "low", "reasons": ["long-standing customer"]}
HIGH_RISK = {"score": 0.8, "level": "high", "reasons": ["many recent refunds"]}


def refund_row(harness: Harness, customer_id: str) -> RefundRequest:
    """The customer's one refund request."""
    [request] = read(harness, select(RefundRequest).where(RefundRequest.customer_id == customer_id))
    assert isinstance(request, RefundRequest)
    return request


def reply_draft(harness: Harness, message_id: str) -> Draft:
    """The reply draft of the message."""
    [draft] = read(harness, select(Draft).where(Draft.message_id == message_id))
    assert isinstance(draft, Draft)
    return draft


# -- the refund gate ----------------------------------------------------------------------------


def run_until_the_refund_wait(harness: Harness, convo: Conversation) -> RefundRequest:
    """Run the email flow (high risk) until the refund gate's wait for a reviewer: the wait is
    not stubbed, so the run stops there. The request, now awaiting approval."""
    order_id = convo.order_ids[-1]
    with pytest.raises(UnstubbedStepError, match=f"await-refund-approval-{order_id}"):
        harness.trigger(
            "handle-customer-email",
            convo.event(),
            stubs={f"score-refund-risk-{order_id}": HIGH_RISK},
        )
    request = refund_row(harness, convo.customer_id)
    assert request.status == "awaiting_approval"
    return request


def refund_waiting_for_a_reviewer(harness: Harness) -> tuple[Conversation, RefundRequest]:
    """A new refund email, run until its refund waits for a reviewer."""
    convo = harness.conversation(subject="Refund", body="Refund {order} please")
    return convo, run_until_the_refund_wait(harness, convo)


def refund_decision(request_id: str, approved: bool) -> inngest.Event:
    """The gateway's `refund/approval.decided` for the request."""
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


def refund_failed_at_stripe(harness: Harness) -> tuple[Conversation, inngest.Event]:
    """A small refund issued automatically, and Stripe's later `charge.refund.failed` for it."""
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
    return convo, failed


# -- the escalation gate ------------------------------------------------------------------------


def escalate(harness: Harness) -> tuple[Conversation, inngest.Event]:
    """Run the email flow on an angry email: the conversation and the escalation event."""
    convo = harness.conversation(subject="Unacceptable", body="This is unacceptable. Lawyer!")
    result = harness.trigger("handle-customer-email", convo.event())
    assert result.status is mocked.Status.COMPLETED, result.error
    [event] = harness.client.sent_named("customer/escalation.requested")
    harness.client.sent.clear()
    return convo, event


def escalation_decision(escalation_id: str, kind: str, approval_id: str) -> inngest.Event:
    """The gateway's `escalation/decision.made` for the escalation."""
    return inngest.Event(
        name="escalation/decision.made",
        data={
            "escalation_id": escalation_id,
            "decision": kind,
            "reviewer": "rev_linus",
            "approval_id": approval_id,
            "decided_at": datetime.now(UTC).isoformat(),
        },
    )


def store_approval(harness: Harness, request_id: str, kind: str, edited: str | None = None) -> str:
    """Only the reviewer's approval row of an escalation (the row itself stays as it is)."""
    approval_id = new_id("apr")

    async def write() -> None:
        async with harness.db.transaction() as session:
            session.add(
                Approval(
                    id=approval_id,
                    kind="escalation",
                    request_id=request_id,
                    decision=kind,
                    reviewer="rev_linus",
                    edited_text=edited,
                    token_id=new_id("tok"),
                )
            )

    harness.run(write())
    return approval_id


def gateway_decides(
    harness: Harness,
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
