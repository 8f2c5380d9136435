"""`apply-hand-sent-refund-decision`: the course's hand-sent refund decision, made regular.

The course sends `refund/approval.decided` as `{approved, customer_id}` (or `{request_id,
approved}`). Steps: find-refund-request (the customer's single pending refund; none or several
fail the run with an audited error), store-decision (like a reviewer's link does), and
emit-refund-decision, the regular decision the waiting refund gate resumes on.
"""

from __future__ import annotations

import datetime
from typing import Any

import inngest
from shared_events import RefundApprovalDecided, RefundApprovalDecidedByHand
from shared_events.base import EventDataError
from shared_events.steps import send_event

from ..deps import SupportWorkerDeps
from ..repositories import UnmatchedDecision
from .steps import audit_context, final_on

FN_ID = "apply-hand-sent-refund-decision"
REVIEWER = "hand-sent-event"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""

    @client.create_function(
        fn_id=FN_ID,
        # Only the hand-sent shape: the gateway's decisions always carry `decision`.
        trigger=RefundApprovalDecided.trigger(if_exp="event.data.decision == null"),
    )
    async def apply_hand_sent_refund_decision(ctx: inngest.Context) -> dict[str, Any]:
        """The course's `{approved, customer_id}` (or `{request_id, approved}`): find the refund
        it means, store the decision like a reviewer's link does, publish the regular decision."""
        return await apply_decision(ctx, deps)

    return apply_hand_sent_refund_decision


async def apply_decision(ctx: inngest.Context, deps: SupportWorkerDeps) -> dict[str, Any]:
    """Find the refund request, store the decision and publish it."""
    repo = deps.repo
    with final_on(EventDataError):
        sent = RefundApprovalDecidedByHand.from_data(ctx.event.data)
    key = f"hand-decision-{ctx.event.id or ctx.run_id}"
    audit = audit_context(ctx, FN_ID)

    async def find_refund_request() -> dict[str, Any]:
        try:
            request_id, customer_id = await repo.find_decidable_refund(
                request_id=sent.request_id, customer_id=sent.customer_id
            )
        except UnmatchedDecision as error:
            await repo.audit_unmatched_decision(
                key=key, customer_id=sent.customer_id, reason=str(error), ctx=audit
            )
            return {"error": str(error)}
        return {"request_id": request_id, "customer_id": customer_id}

    found = await ctx.step.run("find-refund-request", find_refund_request)
    if "error" in found:
        raise inngest.NonRetriableError(str(found["error"]))
    request_id = str(found["request_id"])

    async def store_decision() -> dict[str, Any] | None:
        approval_id = await repo.store_hand_sent_decision(
            key=key, request_id=request_id, approved=sent.approved, reviewer=REVIEWER
        )
        if approval_id is None:
            return None
        now = datetime.datetime.now(datetime.UTC).isoformat()
        return {"approval_id": approval_id, "decided_at": now}

    stored = await ctx.step.run("store-decision", store_decision)
    if stored is None:
        raise inngest.NonRetriableError(f"refund request {request_id} was already decided")
    await send_event(
        ctx.step,
        "emit-refund-decision",
        RefundApprovalDecided(
            request_id=request_id,
            approved=sent.approved,
            decision="approve" if sent.approved else "reject",
            reviewer=REVIEWER,
            approval_id=str(stored["approval_id"]),
            decided_at=datetime.datetime.fromisoformat(str(stored["decided_at"])),
        ),
        id=f"refund-decision-{request_id}",
    )
    return {"request_id": request_id, "approved": sent.approved}
