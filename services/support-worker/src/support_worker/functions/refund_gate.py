"""The refund gate: a part of `handle-customer-email` that decides one paused refund.

Small low-risk refunds are approved automatically; the others wait for a human. Steps, suffixed
with the order id: create-refund-request, score-refund-risk (invokes risk-worker; a failure or
timeout fails safe to a human), record-risk; without auto-approval request-refund-approval,
notify-refund-approver, read-refund-decision, await-refund-approval, close-refund-wait (on
timeout) and record-refund-decision; then the issuing steps (`refund_issuing.py`) or
audit-refund-blocked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import inngest
from service_kit.audit import AuditAction
from shared_events import (
    SCORE_REFUND_RISK,
    CustomerEmailReceived,
    RefundApprovalDecided,
    RefundApprovalRequested,
    RefundRiskInput,
    RiskAssessment,
)
from shared_events.refs import invoke
from shared_events.steps import send_event, wait_for_event

from ..agent import RefundDecision, RefundIntent
from ..deps import SupportWorkerDeps
from ..repositories import AuditContext
from .refund_issuing import ALREADY_REFUNDED, issue_refund


async def decide_refund(
    ctx: inngest.Context,
    deps: SupportWorkerDeps,
    email: CustomerEmailReceived,
    intent: RefundIntent,
    audit: AuditContext,
) -> tuple[RefundDecision, str]:
    """Decide one paused refund: auto-approve small low-risk ones, otherwise ask a human.
    Returns the decision for the agent and a short status (issued / rejected / timed_out /
    failed / invalid / exceeds_refundable: the order had too little left when it was
    issued, e.g. another email's refund for it went out first)."""
    return await RefundGate(ctx, deps, email, intent.order_id, audit).decide(intent)


def ended_before(request: dict[str, Any]) -> tuple[RefundDecision, str] | None:
    """The answer for a request that was decided before (a rerun from the top), if it was;
    an `issuing` request is not ended: its held amount is issued again."""
    status = str(request["status"])
    if status == "issued":  # a rerun from the top: the refund already went out
        return RefundDecision(approved=True), "issued"
    if status == "exceeds_refundable":
        return RefundDecision(approved=False, message=ALREADY_REFUNDED), "exceeds_refundable"
    if status in ("rejected", "timed_out", "failed"):
        message = f"The refund request was {status.replace('_', ' ')}."
        return RefundDecision(approved=False, message=message), status
    return None


@dataclass
class RefundGate:
    """The gate for one order of one email."""

    ctx: inngest.Context
    deps: SupportWorkerDeps
    email: CustomerEmailReceived
    order_id: str
    audit: AuditContext  # the run of handle-customer-email the gate is a part of

    def __post_init__(self) -> None:
        self.repo = self.deps.repo
        self.step = self.ctx.step

    async def decide(self, intent: RefundIntent) -> tuple[RefundDecision, str]:
        """The gate, from the request to the refund (or the reason there is none)."""
        request = await self.create_request(intent)
        if request is None:
            message = "That order is not on the customer's account or was already refunded."
            return RefundDecision(approved=False, message=message), "invalid"
        request_id = str(request["request_id"])
        if request["status"] == "issuing":  # a rerun from the top: re-use the held amount
            return await self.issue(request_id, "rerun")
        ended = ended_before(request)
        if ended is not None:
            return ended

        risk = await self.score_risk(request_id, request, intent.reason)
        auto = (
            int(request["amount_cents"]) <= self.deps.flow.refund_auto_approve_max_cents
            and risk.level == "low"
        )

        async def record_risk() -> bool:
            await self.repo.record_risk(
                request_id, score=risk.score, level=risk.level, reasons=risk.reasons, auto=auto
            )
            return auto

        await self.step.run(f"record-risk-{self.order_id}", record_risk)

        approved, decided_by, timed_out = True, "auto", False
        if not auto:
            approved, decided_by, timed_out = await self.ask_reviewer(request_id, request, risk)
        if approved:
            return await self.issue(request_id, decided_by)
        return await self.block(request_id, decided_by, timed_out)

    async def issue(self, request_id: str, decided_by: str) -> tuple[RefundDecision, str]:
        """The issuing steps (`refund_issuing.py`) for an approved request."""
        return await issue_refund(
            self.ctx, self.deps, self.order_id, request_id, decided_by, self.audit
        )

    async def create_request(self, intent: RefundIntent) -> dict[str, Any] | None:
        """Step `create-refund-request-{order}`: the request, once per email and order."""
        email = self.email

        async def create_request() -> dict[str, Any] | None:
            record = await self.repo.create_refund_request(
                key=f"refund-{email.message_id}-{self.order_id}",
                customer_id=email.customer_id,
                order_id=self.order_id,
                ticket_id=email.ticket_id,
                message_id=email.message_id,
                amount_cents=intent.amount_cents,
                reason=intent.reason,
                ctx=self.audit,
            )
            if record is None:
                return None
            return {
                "request_id": record.request_id,
                "amount_cents": record.amount_cents,
                "currency": record.currency,
                "status": record.status,
            }

        return await self.step.run(f"create-refund-request-{self.order_id}", create_request)

    async def score_risk(
        self, request_id: str, request: dict[str, Any], reason: str
    ) -> RiskAssessment:
        """Step `score-refund-risk-{order}`: risk-worker's score; high risk when it fails."""
        try:
            return await invoke(
                self.step,
                f"score-refund-risk-{self.order_id}",
                SCORE_REFUND_RISK,
                RefundRiskInput(
                    request_id=request_id,
                    customer_id=self.email.customer_id,
                    order_id=self.order_id,
                    amount_cents=int(request["amount_cents"]),
                    currency=str(request["currency"]),
                    reason=reason[:200],
                ),
                timeout=self.deps.flow.risk_invoke_timeout,
            )
        except inngest.StepError as error:
            # Scoring failed or timed out: fail safe, a human decides.
            failure = f"risk scoring unavailable: {error}"[:200]
            return RiskAssessment(score=1.0, level="high", reasons=[failure])

    async def ask_reviewer(
        self, request_id: str, request: dict[str, Any], risk: RiskAssessment
    ) -> tuple[bool, str, bool]:
        """Ask a human and wait for the decision: `(approved, decided_by, timed_out)`."""
        email, order_id = self.email, self.order_id

        async def record_pending_approval() -> bool:
            return await self.repo.audit(
                AuditAction.REFUND_APPROVAL_REQUESTED,
                key=f"refund-approval-requested-{request_id}",
                ctx=self.audit,
                customer_id=email.customer_id,
                ticket_id=email.ticket_id,
                payload={"request_id": request_id, "risk_level": risk.level},
            )

        await self.step.run(f"request-refund-approval-{order_id}", record_pending_approval)
        await send_event(
            self.step,
            f"notify-refund-approver-{order_id}",
            RefundApprovalRequested(
                request_id=request_id,
                customer_id=email.customer_id,
                order_id=order_id,
                ticket_id=email.ticket_id,
                amount_cents=int(request["amount_cents"]),
                currency=str(request["currency"]),
                risk_score=risk.score,
                risk_level=risk.level,
            ),
            id=f"refund-approval-{request_id}",
        )
        stored = await self.await_decision(request_id)
        if stored is None:
            approved, decided_by, timed_out = False, "timeout", True
        else:
            approved, decided_by, timed_out = stored[0] == "approve", stored[1], False

        async def record_decision() -> str:
            await self.repo.decide_refund(
                request_id, approved=approved, decided_by=decided_by, timed_out=timed_out
            )
            return decided_by

        await self.step.run(f"record-refund-decision-{order_id}", record_decision)
        return approved, decided_by, timed_out

    async def await_decision(self, request_id: str) -> list[str] | None:
        """The reviewer's `[decision, reviewer]`, or None when no one decided in time.

        The gateway stores a decision before it publishes it, so one made before the wait is
        registered (e.g. from `nerve pending` while the risk was scored) is read here instead
        of being waited for; one landing between this read and the wait's registration is read
        when the wait ends (`close-refund-wait`)."""
        order_id = self.order_id

        async def read_stored_decision() -> list[str] | None:
            stored = await self.repo.refund_decision(request_id)
            return list(stored) if stored else None

        stored = await self.step.run(f"read-refund-decision-{order_id}", read_stored_decision)
        if stored is not None:
            return stored
        decided = await wait_for_event(
            self.step,
            f"await-refund-approval-{order_id}",
            RefundApprovalDecided,
            match={"request_id": request_id},
            timeout=self.deps.flow.refund_approval_timeout,
        )
        if decided is not None:
            return ["approve" if decided.approved else "reject", decided.reviewer]

        # Time the request out unless a reviewer decided it first: one conditional UPDATE
        # settles the race with the gateway.
        async def close_wait() -> list[str] | None:
            won = await self.repo.close_refund_wait(request_id)
            return list(won) if won else None

        return await self.step.run(f"close-refund-wait-{order_id}", close_wait)

    async def block(
        self, request_id: str, decided_by: str, timed_out: bool
    ) -> tuple[RefundDecision, str]:
        """Step `audit-refund-blocked-{order}`: end a rejected or timed-out request."""
        outcome = "timed_out" if timed_out else "rejected"

        async def audit_blocked() -> bool:
            return await self.repo.mark_refund_blocked(
                request_id, outcome=outcome, decided_by=decided_by, ctx=self.audit
            )

        await self.step.run(f"audit-refund-blocked-{self.order_id}", audit_blocked)
        if timed_out:
            message = "No reviewer approved the refund in time, so it was not issued."
        else:
            message = "A reviewer declined the refund for this order."
        return RefundDecision(approved=False, message=message), outcome
