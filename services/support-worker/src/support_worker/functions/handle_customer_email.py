"""`handle-customer-email`: the agent answers one customer email.

Steps: (store-inline-email for a hand-sent email), audit-received, load-customer, load-thread,
run-agent, then per paused refund the refund gate (`refund_gate.py`) and resume-agent-N until no
approval is pending, save-draft-reply, then audit-sent, or request-escalation and
emit-escalation-requested, and finally emit-draft-created. The agent's reply and its paused
state live in the `drafts` row (claim check); step outputs carry ids and short summaries.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import inngest
from service_kit.audit import AuditAction
from shared_events import CustomerEmailReceived, CustomerEscalationRequested, SupportDraftCreated
from shared_events.steps import send_event

from ..agent import AgentOutcome, RefundDecision, RefundIntent, compose_input, resume_agent
from ..agent import run_agent as run_support_agent
from ..deps import DbSupportBackend, SupportWorkerDeps
from ..repositories import AuditContext, NotFound
from .inline_email import claim_checked_email
from .refund_gate import decide_refund
from .steps import agent_step_summary, audit_context, final_on

FN_ID = "handle-customer-email"

# Priority: enterprise runs jump the queue, pro next, standard last (seconds of head start).
TIER_PRIORITY = (
    "event.data.customer_tier == 'enterprise' ? 120 : (event.data.customer_tier == 'pro' ? 60 : 0)"
)


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""

    @client.create_function(
        fn_id=FN_ID,
        trigger=CustomerEmailReceived.trigger(),
        # 10 globally protects the model's rate limit and the DB pool; 2 per customer stops one
        # noisy customer from taking every slot.
        concurrency=[
            inngest.Concurrency(limit=10),
            inngest.Concurrency(limit=2, key="event.data.customer_id"),
        ],
        throttle=inngest.Throttle(limit=100, period=datetime.timedelta(minutes=1)),
        priority=inngest.Priority(run=TIER_PRIORITY),
        idempotency="event.data.message_id",
    )
    async def handle_customer_email(ctx: inngest.Context) -> dict[str, Any]:
        email = await claim_checked_email(ctx, deps.repo)
        return await EmailRun(ctx, deps, email).handle()

    return handle_customer_email


@dataclass
class EmailRun:
    """One run of the function for one email: what its steps share."""

    ctx: inngest.Context
    deps: SupportWorkerDeps
    email: CustomerEmailReceived
    # The reply's subject, set when run-agent executes; only the draft's first write uses it.
    subject: str = ""

    def __post_init__(self) -> None:
        self.repo = self.deps.repo
        self.step = self.ctx.step
        self.audit: AuditContext = audit_context(self.ctx, FN_ID)

    async def handle(self) -> dict[str, Any]:
        """The whole flow; returns the run's output."""
        await self.step.run("audit-received", self.audit_received)
        await self.step.run("load-customer", self.load_customer)
        thread_ids = await self.step.run("load-thread", self.load_thread)
        result = await self.run_agent(thread_ids)
        result, refunds, escalation_reasons = await self.settle_refunds(result)
        return await self.deliver(str(result["draft_id"]), escalation_reasons, refunds)

    async def audit_received(self) -> bool:
        return await self.repo.audit(
            AuditAction.MESSAGE_RECEIVED,
            key=f"message-received-{self.email.message_id}",
            ctx=self.audit,
            customer_id=self.email.customer_id,
            ticket_id=self.email.ticket_id,
            payload={"message_id": self.email.message_id},
        )

    async def load_customer(self) -> dict[str, Any]:
        with final_on(NotFound):
            customer = await self.repo.load_customer(self.email.customer_id)
        return {
            "customer_id": customer.customer_id,
            "tier": customer.tier,
            "order_count": customer.order_count,
        }

    async def load_thread(self) -> list[str]:
        email = self.email
        return await self.repo.thread_message_ids(
            email.ticket_id, email.message_id, customer_id=email.customer_id
        )

    def backend(self) -> DbSupportBackend:
        return DbSupportBackend(
            self.repo,
            self.deps.embedder,
            customer_id=self.email.customer_id,
            message_id=self.email.message_id,
            ticket_id=self.email.ticket_id,
        )

    async def store(
        self, outcome: AgentOutcome, round_number: int, model_input: str
    ) -> dict[str, Any]:
        """Save the agent's latest output in the reply draft; the step's summary of it."""
        email = self.email
        draft_id = await self.repo.store_agent_result(
            key=f"reply-{email.message_id}",
            kind="reply",
            customer_id=email.customer_id,
            ticket_id=email.ticket_id,
            message_id=email.message_id,
            subject=self.subject,
            reply=outcome.reply,
            agent_state=outcome.state,
            extra={"model": self.deps.model.model_name, "round": round_number},
            run_id=self.ctx.run_id,
        )
        traced = model_input if self.deps.flow.trace_model_io else None
        return agent_step_summary(outcome, draft_id, model_input=traced)

    async def run_agent(self, thread_ids: list[str]) -> dict[str, Any]:
        """Step `run-agent`: the agent's first pass over the email and its thread."""
        email = self.email

        async def run_agent() -> dict[str, Any]:
            with final_on(NotFound):
                agent_email = await self.repo.email_for_agent(
                    email.message_id,
                    list(thread_ids),
                    customer_id=email.customer_id,
                    ticket_id=email.ticket_id,
                )
            self.subject = f"Re: {agent_email.subject}" if agent_email.subject else "Re: your email"
            agent_input = compose_input(agent_email)
            outcome = await run_support_agent(agent_input, self.backend(), self.deps.model)
            return await self.store(outcome, 0, agent_input)

        return await self.step.run("run-agent", run_agent)

    async def settle_refunds(
        self, result: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        """Decide every paused refund and resume the agent until none is pending. Returns the
        last agent result, each order's refund status and every escalation reason."""
        refunds: dict[str, str] = {}
        escalation_reasons: list[str] = list(result["escalation_reasons"])
        round_number = 0
        while result["status"] == "needs_approval":
            round_number += 1
            if round_number > self.deps.flow.max_refund_rounds + 1:
                # Past the limit every request is declined; a model that keeps asking is broken.
                raise inngest.NonRetriableError("the agent keeps requesting refunds; giving up")
            decisions = await self.decide_refunds(result["pending_refunds"], round_number, refunds)
            result = await self.resume(str(result["draft_id"]), decisions, round_number)
            escalation_reasons += result["escalation_reasons"]
        return result, refunds, escalation_reasons

    async def decide_refunds(
        self, pending: list[dict[str, Any]], round_number: int, refunds: dict[str, str]
    ) -> dict[str, dict[str, Any]]:
        """One decision per paused refund call (the gate's, or a decline past the round limit);
        records each gated order's status in `refunds`."""
        decisions: dict[str, dict[str, Any]] = {}
        for raw in pending:
            intent = RefundIntent.model_validate(raw)
            if round_number > self.deps.flow.max_refund_rounds:
                decision = RefundDecision(approved=False, message="Too many refund requests.")
            else:
                decision, status = await decide_refund(
                    self.ctx, self.deps, self.email, intent, self.audit
                )
                refunds[intent.order_id] = status
            decisions[intent.call_id] = decision.model_dump()
        return decisions

    async def resume(
        self, draft_id: str, decisions: dict[str, dict[str, Any]], round_number: int
    ) -> dict[str, Any]:
        """Step `resume-agent-N`: resume the paused agent with the gate's decisions."""

        async def resume() -> dict[str, Any]:
            state = await self.repo.agent_state(draft_id)
            parsed = {k: RefundDecision.model_validate(v) for k, v in decisions.items()}
            outcome = await resume_agent(state, parsed, self.backend(), self.deps.model)
            resumed_with = "; ".join(
                f"{call_id}: "
                + ("approved" if d.approved else f"declined ({d.message or 'no reason'})")
                for call_id, d in parsed.items()
            )
            return await self.store(outcome, round_number, f"resume with decisions: {resumed_with}")

        return await self.step.run(f"resume-agent-{round_number}", resume)

    async def deliver(
        self, draft_id: str, escalation_reasons: list[str], refunds: dict[str, str]
    ) -> dict[str, Any]:
        """Save the reply draft, then send it or hand it to a senior reviewer; announce it."""
        email, repo = self.email, self.repo
        escalated = bool(escalation_reasons)

        async def save_draft_reply() -> bool:
            return await repo.save_draft(
                draft_id,
                status="pending_review" if escalated else "approved",
                audit_key=f"draft-saved-{draft_id}",
                ctx=self.audit,
            )

        await self.step.run("save-draft-reply", save_draft_reply)
        if escalated:
            await self.escalate(draft_id, escalation_reasons[0])
        else:

            async def audit_sent() -> str:
                return await repo.post_draft(
                    draft_id, audit_key=f"message-sent-{email.message_id}", ctx=self.audit
                )

            await self.step.run("audit-sent", audit_sent)

        await send_event(
            self.step,
            "emit-draft-created",
            SupportDraftCreated(
                draft_id=draft_id,
                customer_id=email.customer_id,
                ticket_id=email.ticket_id,
                message_id=email.message_id,
                kind="reply",
            ),
            id=f"draft-created-{draft_id}",
        )
        return {
            "status": "escalated" if escalated else "replied",
            "draft_id": draft_id,
            "refunds": refunds,
        }

    async def escalate(self, draft_id: str, reason: str) -> None:
        """Steps `request-escalation` and `emit-escalation-requested`."""
        email = self.email

        async def request_escalation() -> str:
            return await self.repo.create_escalation(
                key=f"escalation-{email.message_id}",
                customer_id=email.customer_id,
                ticket_id=email.ticket_id,
                message_id=email.message_id,
                reason=reason,
                draft_id=draft_id,
                ctx=self.audit,
            )

        escalation_id = await self.step.run("request-escalation", request_escalation)
        await send_event(
            self.step,
            "emit-escalation-requested",
            CustomerEscalationRequested(
                escalation_id=escalation_id,
                customer_id=email.customer_id,
                ticket_id=email.ticket_id,
                message_id=email.message_id,
                reason=reason[:200] or "escalated by the agent",
            ),
            id=f"escalation-{escalation_id}",
        )
