"""Issuing an approved refund: the refund gate's last steps (`refund_gate.py`).

Three steps, so a crash between any two is safe: reserve-refund holds the amount on the order (or
blocks the request when too little is left), issue-refund calls the payment provider with the
request id as idempotency key (a retry repeats the same call and gets the same refund), then
record-refund-issued, or release-refund when the provider refused (the hold goes back).
"""

from __future__ import annotations

from typing import Any

import inngest

from ..agent import RefundDecision
from ..deps import SupportWorkerDeps
from ..payments import RefundFailed
from ..repositories import AuditContext

ALREADY_REFUNDED = (
    "This order has already been refunded in full (or another refund for it is in progress), "
    "so no further refund was issued."
)


def exceeds_refundable_message(held: dict[str, Any]) -> str:
    """What the agent tells the customer when the order has too little left to refund."""
    left = max(int(held["order_amount_cents"]) - int(held["refunded_cents"]), 0)
    if left == 0:
        return ALREADY_REFUNDED
    amount = f"{left / 100:.2f} {str(held['currency']).upper()}"
    return (
        f"Another refund for this order was issued first; only {amount} is left to refund, "
        "which is less than this request, so it was not issued."
    )


async def issue_refund(
    ctx: inngest.Context,
    deps: SupportWorkerDeps,
    order_id: str,
    request_id: str,
    decided_by: str,
    audit: AuditContext,
) -> tuple[RefundDecision, str]:
    """Issue an approved refund at most up to what the order has left; the decision for the
    agent and the request's status (issued / failed / exceeds_refundable / what it became)."""
    step, repo = ctx.step, deps.repo

    async def reserve() -> dict[str, Any]:
        held = await repo.reserve_refund(request_id, ctx=audit)
        return {
            "reserved": held.reserved,
            "status": held.request.status,
            "currency": held.request.currency,
            "order_amount_cents": held.order_amount_cents,
            "refunded_cents": held.refunded_cents,
        }

    reservation = await step.run(f"reserve-refund-{order_id}", reserve)
    if reservation["status"] == "exceeds_refundable":
        message = exceeds_refundable_message(reservation)
        return RefundDecision(approved=False, message=message), "exceeds_refundable"
    if not reservation["reserved"]:  # ended before (e.g. rejected): report what it became
        status = str(reservation["status"])
        message = f"The refund request was {status.replace('_', ' ')}."
        return RefundDecision(approved=False, message=message), status

    async def call_provider() -> dict[str, Any]:
        record = await repo.refund(request_id)
        if record.status == "issued" and record.provider_refund_id:
            return {"issued": True, "provider_refund_id": record.provider_refund_id}
        try:
            receipt = await deps.payments.refund(
                idempotency_key=request_id,
                charge_id=record.charge_id,
                amount_cents=record.amount_cents,
                currency=record.currency,
            )
        except RefundFailed as error:
            return {"issued": False, "error": str(error)[:200]}
        return {"issued": True, "provider_refund_id": receipt.provider_refund_id}

    issued = await step.run(f"issue-refund-{order_id}", call_provider)
    if issued["issued"]:

        async def record_issued() -> bool:
            return await repo.mark_refund_issued(
                request_id, provider_refund_id=str(issued["provider_refund_id"]), ctx=audit
            )

        await step.run(f"record-refund-issued-{order_id}", record_issued)
        return RefundDecision(approved=True), "issued"

    async def release() -> bool:
        return await repo.release_refund(
            request_id, error=str(issued["error"]), decided_by=decided_by, ctx=audit
        )

    await step.run(f"release-refund-{order_id}", release)
    message = "The payment provider declined the refund; a colleague will follow up."
    return RefundDecision(approved=False, message=message), "failed"
