"""The escalation gate: how `escalate-with-human-approval` obtains a reviewer's decision.

Steps: read-stored-decision (a decision the gateway stored before the wait is registered is used
without waiting), wait-for-decision (matched on the escalation id), and close-wait when the wait
times out (one conditional UPDATE times the escalation out unless a reviewer decided it first).
"""

from __future__ import annotations

from dataclasses import dataclass

import inngest
from shared_events import EscalationDecisionMade
from shared_events.steps import wait_for_event

from ..deps import SupportWorkerDeps


@dataclass(frozen=True)
class EscalationVerdict:
    """What the gate decided and how the decision reached it."""

    decision: str  # approve / edit / reject / timeout
    reviewer: str
    approval_id: str | None
    decided_via: str  # stored-before-wait / event / stored-after-wait / timeout


async def await_escalation_decision(
    step: inngest.Step, deps: SupportWorkerDeps, escalation_id: str
) -> EscalationVerdict:
    """The reviewer's decision on `escalation_id`, or a timeout."""
    repo = deps.repo

    # A decision stored before the wait is registered is read first, not waited for; one
    # landing between this read and the registration is read when the wait ends.
    async def read_stored_decision() -> list[str] | None:
        stored = await repo.escalation_decision(escalation_id)
        return list(stored) if stored else None

    stored = await step.run("read-stored-decision", read_stored_decision)
    decided_via = "stored-before-wait"
    if stored is None:
        decided = await wait_for_event(
            step,
            "wait-for-decision",
            EscalationDecisionMade,
            match={"escalation_id": escalation_id},
            timeout=deps.flow.escalation_timeout,
        )
        decided_via = "event"
        if decided is not None:
            stored = [decided.decision, decided.reviewer, decided.approval_id]
        else:
            # Time the escalation out unless a reviewer decided it first: one conditional
            # UPDATE settles the race with the gateway.
            async def close_wait() -> list[str] | None:
                won = await repo.close_escalation_wait(escalation_id)
                return list(won) if won else None

            stored = await step.run("close-wait", close_wait)
            decided_via = "timeout" if stored is None else "stored-after-wait"
    if stored is None:
        return EscalationVerdict("timeout", "timeout", None, decided_via)
    return EscalationVerdict(stored[0], stored[1], stored[2], decided_via)
