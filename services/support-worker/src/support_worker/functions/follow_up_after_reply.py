"""`follow-up-after-reply`: days after a sent reply, close the ticket and ask for feedback.

Cancelled by a new email from the same customer. Steps: wait-before-follow-up (a sleep),
check-reply-sent, close-ticket, request-feedback, emit-ticket-resolved (a closed ticket is a
resolved case: `batch-embed-resolved-tickets` embeds it for the similar-cases tool).
"""

from __future__ import annotations

from typing import Any

import inngest
from shared_events import CustomerEmailReceived, SupportDraftCreated, TicketResolved
from shared_events.steps import send_event

from ..deps import SupportWorkerDeps
from ..repositories import NotFound
from .steps import APP_ID, audit_context, final_on

FN_ID = "follow-up-after-reply"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""

    @client.create_function(
        fn_id=FN_ID,
        trigger=SupportDraftCreated.trigger(if_exp="event.data.kind == 'reply'"),
        cancel=[
            inngest.Cancel(
                event=CustomerEmailReceived.name,
                if_exp="async.data.customer_id == event.data.customer_id",
            )
        ],
    )
    async def follow_up_after_reply(ctx: inngest.Context) -> dict[str, Any]:
        return await follow_up(ctx, deps)

    return follow_up_after_reply


async def follow_up(ctx: inngest.Context, deps: SupportWorkerDeps) -> dict[str, Any]:
    """Sleep, then close the replied ticket, ask for feedback and announce it resolved."""
    repo = deps.repo
    created = SupportDraftCreated.from_event(ctx.event)
    audit = audit_context(ctx, FN_ID)
    await ctx.step.sleep("wait-before-follow-up", deps.flow.follow_up_delay)
    if created.ticket_id is None:
        return {"status": "no_ticket"}
    ticket_id = created.ticket_id

    async def reply_was_sent() -> bool:
        return await repo.draft_status(created.draft_id) == "sent"

    # An escalated reply that a reviewer rejected was never sent: nothing to follow up on.
    if not await ctx.step.run("check-reply-sent", reply_was_sent):
        return {"status": "reply_not_sent", "ticket_id": ticket_id}

    async def close_ticket() -> bool:
        with final_on(NotFound):
            return await repo.close_ticket(ticket_id, ctx=audit)

    await ctx.step.run("close-ticket", close_ticket)

    async def request_feedback() -> str | None:
        with final_on(NotFound):
            return await repo.send_feedback_request(created.draft_id, ctx=audit)

    message_id = await ctx.step.run("request-feedback", request_feedback)
    # A closed ticket is a resolved case: embed it for the similar-cases tool.
    await send_event(
        ctx.step,
        "emit-ticket-resolved",
        TicketResolved(ticket_id=ticket_id, customer_id=created.customer_id, resolved_by=APP_ID),
        id=f"ticket-resolved-{ticket_id}",
    )
    return {"status": "closed", "ticket_id": ticket_id, "feedback_message_id": message_id}
