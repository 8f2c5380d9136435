"""`escalate-with-human-approval`: a senior reviewer approves, edits or rejects an escalated reply.

Steps: notify-reviewer, the escalation gate (`escalation_gate.py`), one of audit-approved /
audit-edited / audit-rejected / audit-timeout, then post-reply unless the reply was rejected (a
timed-out one is sent with a header saying no human reviewed it).
"""

from __future__ import annotations

from typing import Any

import inngest
from service_kit.audit import AuditAction
from shared_events import CustomerEscalationRequested, EscalationReviewRequested
from shared_events.steps import send_event

from ..deps import SupportWorkerDeps
from .escalation_gate import EscalationVerdict, await_escalation_decision
from .steps import audit_context

FN_ID = "escalate-with-human-approval"
NO_REVIEW_HEADER = "[Sent without human review: no reviewer decided within the review window]"

# decision -> (outcome, audit action, step id)
OUTCOMES = {
    "approve": ("approved", AuditAction.ESCALATION_APPROVED, "audit-approved"),
    "edit": ("edited", AuditAction.ESCALATION_EDITED, "audit-edited"),
    "reject": ("rejected", AuditAction.ESCALATION_REJECTED, "audit-rejected"),
    "timeout": ("timed_out", AuditAction.ESCALATION_TIMED_OUT, "audit-timeout"),
}


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""

    @client.create_function(
        fn_id=FN_ID,
        trigger=CustomerEscalationRequested.trigger(),
        concurrency=[inngest.Concurrency(limit=5)],
    )
    async def escalate_with_human_approval(ctx: inngest.Context) -> dict[str, Any]:
        return await escalate(ctx, deps)

    return escalate_with_human_approval


async def escalate(ctx: inngest.Context, deps: SupportWorkerDeps) -> dict[str, Any]:
    """Ask a reviewer, record the decision and post the reply it allows."""
    request = CustomerEscalationRequested.from_event(ctx.event)
    escalation_id = request.escalation_id
    await send_event(
        ctx.step,
        "notify-reviewer",
        EscalationReviewRequested(
            escalation_id=escalation_id,
            customer_id=request.customer_id,
            ticket_id=request.ticket_id,
            reason=request.reason,
        ),
        id=f"escalation-review-{escalation_id}",
    )
    verdict = await await_escalation_decision(ctx.step, deps, escalation_id)
    outcome = await record_outcome(ctx, deps, escalation_id, verdict)
    summary = {
        "escalation_id": escalation_id,
        "outcome": outcome,
        "decided_via": verdict.decided_via,
    }
    if verdict.decision == "reject":
        return {**summary, "posted": False}
    posted = await post_reply(ctx, deps, request, timed_out=verdict.decision == "timeout")
    return {**summary, "posted": posted is not None}


async def record_outcome(
    ctx: inngest.Context, deps: SupportWorkerDeps, escalation_id: str, verdict: EscalationVerdict
) -> str:
    """Step audit-<outcome>: resolve the escalation as the reviewer decided; the outcome."""
    repo = deps.repo
    outcome, action, step_id = OUTCOMES[verdict.decision]

    async def audit_decision() -> bool:
        final_text = None
        if verdict.decision == "edit" and verdict.approval_id:
            final_text = await repo.edited_text(verdict.approval_id)
        return await repo.resolve_escalation(
            escalation_id,
            outcome=outcome,
            reviewer=verdict.reviewer,
            action=action,
            ctx=audit_context(ctx, FN_ID),
            final_text=final_text,
            approval_id=verdict.approval_id,
        )

    await ctx.step.run(step_id, audit_decision)
    return outcome


async def post_reply(
    ctx: inngest.Context,
    deps: SupportWorkerDeps,
    request: CustomerEscalationRequested,
    *,
    timed_out: bool,
) -> str | None:
    """Step `post-reply`: send the escalated reply (as edited); the message id, if sent."""
    repo = deps.repo
    escalation_id = request.escalation_id

    async def post_reply() -> str | None:
        draft_id = await repo.escalation_draft_id(escalation_id)
        if draft_id is None:
            return None
        text = await repo.escalation_text(escalation_id)
        message_id = await repo.post_draft(
            draft_id,
            audit_key=f"message-sent-{request.message_id}",
            ctx=audit_context(ctx, FN_ID),
            text=text,
            header=NO_REVIEW_HEADER if timed_out else None,
        )
        await repo.mark_escalation_posted(escalation_id, message_id)
        return message_id

    return await ctx.step.run("post-reply", post_reply)
