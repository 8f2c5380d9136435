"""`close-cancelled-gates`: a cancelled gate's waiting requests end `cancelled`.

A cancelled run of handle-customer-email or escalate-with-human-approval (bulk cancel, REST
cancel) can never decide its requests. Step close-waiting-requests ends them `cancelled`, audited
(`refund_cancelled` / `escalation_cancelled`), so they leave `nerve pending` and a late decision
gets 409.
"""

from __future__ import annotations

from typing import Any

import inngest
from shared_events import InngestFunctionCancelled

from ..deps import SupportWorkerDeps
from . import escalate_with_human_approval, handle_customer_email
from .steps import APP_ID

FN_ID = "close-cancelled-gates"
GATED = {
    f"{APP_ID}-{handle_customer_email.FN_ID}",
    f"{APP_ID}-{escalate_with_human_approval.FN_ID}",
}


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""

    @client.create_function(
        fn_id=FN_ID,
        trigger=InngestFunctionCancelled.trigger(
            if_exp=" || ".join(f"event.data.function_id == '{slug}'" for slug in sorted(GATED))
        ),
    )
    async def close_cancelled_gates(ctx: inngest.Context) -> dict[str, Any]:
        """A cancelled gate (bulk cancel, REST cancel) can never decide its requests: end them
        `cancelled`, audited, so they leave `nerve pending` and a late decision gets 409."""
        cancelled = InngestFunctionCancelled.from_event(ctx.event)

        async def close() -> list[str]:
            return await close_waiting_requests(deps, cancelled)

        closed = await ctx.step.run("close-waiting-requests", close)
        return {"cancelled_run_id": cancelled.run_id, "closed": closed}

    return close_cancelled_gates


async def close_waiting_requests(
    deps: SupportWorkerDeps, cancelled: InngestFunctionCancelled
) -> list[str]:
    """The ids of the cancelled run's requests this call ended."""
    repo = deps.repo
    data = cancelled.event.get("data") or {}
    if cancelled.function_id.endswith(f"-{escalate_with_human_approval.FN_ID}"):
        escalation_id = str(data.get("escalation_id") or "")
        if not escalation_id:
            return []
        closed = await repo.cancel_waiting_escalation(
            escalation_id, run_id=cancelled.run_id, function_id=cancelled.function_id
        )
        return [escalation_id] if closed else []
    message_id = str(data.get("message_id") or "")
    if not message_id:
        return []
    return await repo.cancel_waiting_refunds(
        message_id, run_id=cancelled.run_id, function_id=cancelled.function_id
    )
