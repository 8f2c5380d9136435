"""What the support worker's functions share: the app id, the error mapping, the audit context
and the agent steps' summary.

The function modules and the gates import from here; domain code never does (it imports inngest).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import inngest

from ..agent import AgentOutcome, redact
from ..repositories import AuditContext

APP_ID = "support-worker"


@contextmanager
def final_on(*errors: type[Exception]) -> Iterator[None]:
    """Raise `errors` as `NonRetriableError`: bad event data or a row the flow needs that does
    not exist is not fixed by retrying."""
    try:
        yield
    except errors as error:
        raise inngest.NonRetriableError(str(error)) from error


def audit_context(ctx: inngest.Context, function_id: str) -> AuditContext:
    """Who writes the run's audit rows: this run of `function_id`."""
    return AuditContext(run_id=ctx.run_id, function_id=function_id)


def agent_step_summary(
    outcome: AgentOutcome, draft_id: str, *, model_input: str | None = None
) -> dict[str, Any]:
    """What a run-agent / resume-agent step returns: ids and short facts; with `model_input`
    (development only) also the model's input and output, redacted, for the run trace."""
    summary: dict[str, Any] = {
        "status": outcome.status,
        "draft_id": draft_id,
        "pending_refunds": [intent.model_dump() for intent in outcome.pending_refunds],
        "escalation_reasons": outcome.escalation_reasons,
    }
    if model_input is not None:
        if outcome.status == "done":
            answer = outcome.reply or ""
        else:
            orders = ", ".join(intent.order_id for intent in outcome.pending_refunds)
            answer = f"(paused: request_refund for {orders} awaits a decision)"
        summary["model_input"] = redact(model_input)
        summary["model_output"] = redact(answer)
    return summary
