"""The support worker's Inngest functions: with `app.py`, the only code that imports `inngest`.

One module per function, named after its id; the refund gate (`refund_gate.py`,
`refund_issuing.py`) and the escalation gate (`escalation_gate.py`) are parts of
handle-customer-email and escalate-with-human-approval; `steps.py` holds what they share.
Each module's `create(client, deps)` wraps domain code (agent, repositories, payments,
embeddings) in named steps with natural idempotency keys; `create_functions` lists them all for
`serve`. Step outputs carry ids and short summaries only (the agent's reply and its paused state
live in the `drafts` row: claim check). In development (FlowConfig.trace_model_io) the agent
steps also show the model's input and output, redacted, so a developer can read them in the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import inngest

from ..deps import SupportWorkerDeps
from . import (
    apply_hand_sent_refund_decision,
    batch_embed_resolved_tickets,
    close_cancelled_gates,
    customer_health_check,
    daily_health_check,
    escalate_with_human_approval,
    follow_up_after_reply,
    handle_customer_email,
    handle_refund_failed,
    weekly_agent_metrics,
)
from .steps import APP_ID

FunctionFactory = Callable[[inngest.Inngest, SupportWorkerDeps], inngest.Function[Any]]

# Every function the app serves, in the order it registers them.
FUNCTIONS: tuple[FunctionFactory, ...] = (
    apply_hand_sent_refund_decision.create,
    handle_customer_email.create,
    escalate_with_human_approval.create,
    close_cancelled_gates.create,
    daily_health_check.create,
    customer_health_check.create,
    follow_up_after_reply.create,
    batch_embed_resolved_tickets.create,
    weekly_agent_metrics.create,
    handle_refund_failed.create,
)


def create_functions(
    client: inngest.Inngest, deps: SupportWorkerDeps
) -> list[inngest.Function[Any]]:
    """Every support-worker function, bound to `client` and `deps`."""
    return [create(client, deps) for create in FUNCTIONS]


__all__ = ["APP_ID", "FUNCTIONS", "create_functions"]
