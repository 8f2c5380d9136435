"""`handle-refund-failed`: Stripe could not complete a refund; draft a follow-up on its ticket.

Steps: draft-follow-up (once per Stripe event, audited `draft_saved`), emit-draft-created.
"""

from __future__ import annotations

from typing import Any

import inngest
from shared_events import StripeChargeRefundFailed, SupportDraftCreated
from shared_events.steps import send_event

from ..deps import SupportWorkerDeps

FN_ID = "handle-refund-failed"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""
    repo = deps.repo

    @client.create_function(fn_id=FN_ID, trigger=StripeChargeRefundFailed.trigger())
    async def handle_refund_failed(ctx: inngest.Context) -> dict[str, Any]:
        failed = StripeChargeRefundFailed.from_event(ctx.event)

        async def draft_follow_up() -> dict[str, Any] | None:
            ref = await repo.draft_refund_failed_follow_up(
                stripe_event_id=failed.stripe_event_id,
                charge_id=failed.charge_id,
                refund_id=failed.refund_id,
                failure_reason=failed.failure_reason,
                run_id=ctx.run_id,
            )
            if ref is None:
                return None
            return {
                "draft_id": ref.draft_id,
                "customer_id": ref.customer_id,
                "ticket_id": ref.ticket_id,
            }

        ref = await ctx.step.run("draft-follow-up", draft_follow_up)
        if ref is None:
            return {"status": "no_matching_ticket"}
        await send_event(
            ctx.step,
            "emit-draft-created",
            SupportDraftCreated(
                draft_id=ref["draft_id"],
                customer_id=ref["customer_id"],
                ticket_id=ref["ticket_id"],
                kind="refund_failed",
            ),
            id=f"draft-created-{ref['draft_id']}",
        )
        return {"status": "drafted", **ref}

    return handle_refund_failed
