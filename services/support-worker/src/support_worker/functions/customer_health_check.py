"""`customer-health-check`: draft a proactive check-in for one customer (once per day).

Steps: draft-outreach (audited `proactive_outreach_drafted`), emit-draft-created.
"""

from __future__ import annotations

import datetime
from typing import Any

import inngest
from shared_events import CustomerHealthCheckRequested, SupportDraftCreated
from shared_events.steps import send_event

from ..deps import SupportWorkerDeps
from ..repositories import NotFound
from .steps import audit_context, final_on

FN_ID = "customer-health-check"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""
    repo = deps.repo

    @client.create_function(
        fn_id=FN_ID,
        trigger=CustomerHealthCheckRequested.trigger(),
        concurrency=[inngest.Concurrency(limit=5)],
        throttle=inngest.Throttle(limit=30, period=datetime.timedelta(minutes=1)),
        rate_limit=inngest.RateLimit(
            limit=1, period=datetime.timedelta(hours=24), key="event.data.customer_id"
        ),
    )
    async def customer_health_check(ctx: inngest.Context) -> dict[str, Any]:
        check = CustomerHealthCheckRequested.from_event(ctx.event)
        audit = audit_context(ctx, FN_ID)

        async def draft_outreach() -> str:
            with final_on(NotFound):
                ref = await repo.draft_proactive_outreach(
                    check.customer_id, check.check_date, ctx=audit
                )
            return ref.draft_id

        draft_id = await ctx.step.run("draft-outreach", draft_outreach)
        await send_event(
            ctx.step,
            "emit-draft-created",
            SupportDraftCreated(draft_id=draft_id, customer_id=check.customer_id, kind="proactive"),
            id=f"draft-created-{draft_id}",
        )
        return {"customer_id": check.customer_id, "draft_id": draft_id}

    return customer_health_check
