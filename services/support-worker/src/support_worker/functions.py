"""The support worker's Inngest functions: the only module that imports `inngest`.

Each function wraps domain code (agent, repositories, payments, embeddings). Every side effect is
its own named `step.run` with a natural idempotency key; step outputs carry ids and short
summaries only (the agent's reply and its paused state live in the `drafts` row: claim check).
In development (FlowConfig.trace_model_io) the agent steps also show the model's input and
output, redacted of email addresses and secrets, so a developer can read them in the trace.
"""

from __future__ import annotations

import datetime
from typing import Any

import inngest
from service_kit.audit import AuditAction
from shared_events import (
    SCORE_REFUND_RISK,
    CustomerEmailReceived,
    CustomerEmailReceivedInline,
    CustomerEscalationRequested,
    CustomerHealthCheckRequested,
    EscalationDecisionMade,
    EscalationReviewRequested,
    InngestFunctionCancelled,
    RefundApprovalDecided,
    RefundApprovalDecidedByHand,
    RefundApprovalRequested,
    RefundRiskInput,
    RiskAssessment,
    StripeChargeRefundFailed,
    SupportDraftCreated,
    SupportHealthCheckRunRequested,
    TicketResolved,
    parse_any,
)
from shared_events.base import EventDataError
from shared_events.refs import invoke
from shared_events.steps import send_event, send_events, wait_for_event

from .agent import (
    AgentOutcome,
    RefundDecision,
    RefundIntent,
    compose_input,
    redact,
    resume_agent,
)
from .agent import run_agent as run_support_agent
from .deps import DbSupportBackend, SupportWorkerDeps
from .payments import RefundFailed
from .repositories import AuditContext, NotFound, UnmatchedDecision

APP_ID = "support-worker"
NO_REVIEW_HEADER = "[Sent without human review: no reviewer decided within the review window]"

# Priority: enterprise runs jump the queue, pro next, standard last (seconds of head start).
ALREADY_REFUNDED = (
    "This order has already been refunded in full (or another refund for it is in progress), "
    "so no further refund was issued."
)


def _exceeds_refundable_message(held: dict[str, Any]) -> str:
    """What the agent tells the customer when the order has too little left to refund."""
    left = max(int(held["order_amount_cents"]) - int(held["refunded_cents"]), 0)
    if left == 0:
        return ALREADY_REFUNDED
    amount = f"{left / 100:.2f} {str(held['currency']).upper()}"
    return (
        f"Another refund for this order was issued first; only {amount} is left to refund, "
        "which is less than this request, so it was not issued."
    )


TIER_PRIORITY = (
    "event.data.customer_tier == 'enterprise' ? 120 : (event.data.customer_tier == 'pro' ? 60 : 0)"
)


def _summary(
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


def create_functions(
    client: inngest.Inngest, deps: SupportWorkerDeps
) -> list[inngest.Function[Any]]:
    """Every support-worker function, bound to `client` and `deps`."""
    repo = deps.repo
    flow = deps.flow

    # -- 1. handle-customer-email -------------------------------------------------------------

    @client.create_function(
        fn_id="handle-customer-email",
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
        email = await _claim_checked_email(ctx)
        step = ctx.step
        audit = AuditContext(run_id=ctx.run_id, function_id="handle-customer-email")

        async def audit_received() -> bool:
            return await repo.audit(
                AuditAction.MESSAGE_RECEIVED,
                key=f"message-received-{email.message_id}",
                ctx=audit,
                customer_id=email.customer_id,
                ticket_id=email.ticket_id,
                payload={"message_id": email.message_id},
            )

        await step.run("audit-received", audit_received)

        async def load_customer() -> dict[str, Any]:
            try:
                customer = await repo.load_customer(email.customer_id)
            except NotFound as error:
                raise inngest.NonRetriableError(str(error)) from error
            return {
                "customer_id": customer.customer_id,
                "tier": customer.tier,
                "order_count": customer.order_count,
            }

        await step.run("load-customer", load_customer)

        async def load_thread() -> list[str]:
            return await repo.thread_message_ids(
                email.ticket_id, email.message_id, customer_id=email.customer_id
            )

        thread_ids = await step.run("load-thread", load_thread)

        def backend() -> DbSupportBackend:
            return DbSupportBackend(
                repo,
                deps.embedder,
                customer_id=email.customer_id,
                message_id=email.message_id,
                ticket_id=email.ticket_id,
            )

        async def store(
            outcome: AgentOutcome, round_number: int, model_input: str
        ) -> dict[str, Any]:
            draft_id = await repo.store_agent_result(
                key=f"reply-{email.message_id}",
                kind="reply",
                customer_id=email.customer_id,
                ticket_id=email.ticket_id,
                message_id=email.message_id,
                subject=subject,
                reply=outcome.reply,
                agent_state=outcome.state,
                extra={"model": deps.model.model_name, "round": round_number},
                run_id=ctx.run_id,
            )
            traced = model_input if flow.trace_model_io else None
            return _summary(outcome, draft_id, model_input=traced)

        subject = ""

        async def run_agent() -> dict[str, Any]:
            nonlocal subject
            try:
                agent_email = await repo.email_for_agent(
                    email.message_id,
                    list(thread_ids),
                    customer_id=email.customer_id,
                    ticket_id=email.ticket_id,
                )
            except NotFound as error:
                raise inngest.NonRetriableError(str(error)) from error
            subject = f"Re: {agent_email.subject}" if agent_email.subject else "Re: your email"
            agent_input = compose_input(agent_email)
            outcome = await run_support_agent(agent_input, backend(), deps.model)
            return await store(outcome, 0, agent_input)

        result: dict[str, Any] = await step.run("run-agent", run_agent)

        refunds: dict[str, str] = {}
        escalation_reasons: list[str] = list(result["escalation_reasons"])
        round_number = 0
        while result["status"] == "needs_approval":
            round_number += 1
            if round_number > flow.max_refund_rounds + 1:
                # Past the limit every request is declined; a model that keeps asking is broken.
                raise inngest.NonRetriableError("the agent keeps requesting refunds; giving up")
            decisions: dict[str, dict[str, Any]] = {}
            for raw in result["pending_refunds"]:
                intent = RefundIntent.model_validate(raw)
                if round_number > flow.max_refund_rounds:
                    decision = RefundDecision(approved=False, message="Too many refund requests.")
                else:
                    decision, status = await _refund_gate(ctx, email, intent)
                    refunds[intent.order_id] = status
                decisions[intent.call_id] = decision.model_dump()
            draft_id = str(result["draft_id"])

            async def resume(
                draft_id: str = draft_id,
                decisions: dict[str, dict[str, Any]] = decisions,
                round_number: int = round_number,
            ) -> dict[str, Any]:
                state = await repo.agent_state(draft_id)
                parsed = {k: RefundDecision.model_validate(v) for k, v in decisions.items()}
                outcome = await resume_agent(state, parsed, backend(), deps.model)
                resumed_with = "; ".join(
                    f"{call_id}: "
                    + ("approved" if d.approved else f"declined ({d.message or 'no reason'})")
                    for call_id, d in parsed.items()
                )
                return await store(outcome, round_number, f"resume with decisions: {resumed_with}")

            result = await step.run(f"resume-agent-{round_number}", resume)
            escalation_reasons += result["escalation_reasons"]

        draft_id = str(result["draft_id"])
        escalated = bool(escalation_reasons)

        async def save_draft_reply() -> bool:
            return await repo.save_draft(
                draft_id,
                status="pending_review" if escalated else "approved",
                audit_key=f"draft-saved-{draft_id}",
                ctx=audit,
            )

        await step.run("save-draft-reply", save_draft_reply)

        if escalated:

            async def request_escalation() -> str:
                return await repo.create_escalation(
                    key=f"escalation-{email.message_id}",
                    customer_id=email.customer_id,
                    ticket_id=email.ticket_id,
                    message_id=email.message_id,
                    reason=escalation_reasons[0],
                    draft_id=draft_id,
                    ctx=audit,
                )

            escalation_id = await step.run("request-escalation", request_escalation)
            await send_event(
                step,
                "emit-escalation-requested",
                CustomerEscalationRequested(
                    escalation_id=escalation_id,
                    customer_id=email.customer_id,
                    ticket_id=email.ticket_id,
                    message_id=email.message_id,
                    reason=escalation_reasons[0][:200] or "escalated by the agent",
                ),
                id=f"escalation-{escalation_id}",
            )
        else:

            async def audit_sent() -> str:
                return await repo.post_draft(
                    draft_id, audit_key=f"message-sent-{email.message_id}", ctx=audit
                )

            await step.run("audit-sent", audit_sent)

        await send_event(
            step,
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

    async def _claim_checked_email(ctx: inngest.Context) -> CustomerEmailReceived:
        """The gateway's event as it is; a hand-sent one with the text inline (the course's
        `{email_text, customer_id}`) is first stored as an inbound message, in its own step
        keyed by the event id, so the rest of the flow reads it like any other email."""
        try:
            received = parse_any(CustomerEmailReceived.name, ctx.event.data)
        except EventDataError as error:
            raise inngest.NonRetriableError(str(error)) from error
        if not isinstance(received, CustomerEmailReceivedInline):
            return CustomerEmailReceived.model_validate(received.model_dump())
        inline = received
        key = f"inline-{ctx.event.id or f'{inline.customer_id}-{ctx.event.ts}'}"

        async def store_inline_email() -> dict[str, Any]:
            try:
                stored = await repo.store_inline_email(
                    key=key,
                    customer_id=inline.customer_id,
                    subject=inline.subject or "(sent as an event)",
                    body=inline.email_text,
                )
            except NotFound as error:
                raise inngest.NonRetriableError(str(error)) from error
            return CustomerEmailReceived(
                message_id=stored.message_id,
                provider_message_id=key,
                customer_id=stored.customer_id,
                customer_tier=stored.customer_tier,  # type: ignore[arg-type]
                ticket_id=stored.ticket_id,
                received_at=stored.received_at,
            ).to_data()

        return CustomerEmailReceived.from_data(
            await ctx.step.run("store-inline-email", store_inline_email)
        )

    # -- 2. the refund gate (a part of handle-customer-email) ----------------------------------

    async def _refund_gate(
        ctx: inngest.Context, email: CustomerEmailReceived, intent: RefundIntent
    ) -> tuple[RefundDecision, str]:
        """Decide one paused refund: auto-approve small low-risk ones, otherwise ask a human.
        Returns the decision for the agent and a short status (issued / rejected / timed_out /
        failed / invalid / exceeds_refundable: the order had too little left when it was
        issued, e.g. another email's refund for it went out first)."""
        step = ctx.step
        order_id = intent.order_id
        audit = AuditContext(run_id=ctx.run_id, function_id="handle-customer-email")

        async def create_request() -> dict[str, Any] | None:
            record = await repo.create_refund_request(
                key=f"refund-{email.message_id}-{order_id}",
                customer_id=email.customer_id,
                order_id=order_id,
                ticket_id=email.ticket_id,
                message_id=email.message_id,
                amount_cents=intent.amount_cents,
                reason=intent.reason,
                ctx=audit,
            )
            if record is None:
                return None
            return {
                "request_id": record.request_id,
                "amount_cents": record.amount_cents,
                "currency": record.currency,
                "status": record.status,
            }

        request = await step.run(f"create-refund-request-{order_id}", create_request)
        if request is None:
            message = "That order is not on the customer's account or was already refunded."
            return RefundDecision(approved=False, message=message), "invalid"
        request_id = str(request["request_id"])
        if request["status"] == "issued":  # a rerun from the top: the refund already went out
            return RefundDecision(approved=True), "issued"
        if request["status"] == "issuing":  # a rerun from the top: re-use the held amount
            return await _issue_refund(ctx, order_id, request_id, "rerun")
        if request["status"] == "exceeds_refundable":
            return RefundDecision(approved=False, message=ALREADY_REFUNDED), "exceeds_refundable"
        if request["status"] in ("rejected", "timed_out", "failed"):
            message = f"The refund request was {request['status'].replace('_', ' ')}."
            return RefundDecision(approved=False, message=message), str(request["status"])

        try:
            risk = await invoke(
                step,
                f"score-refund-risk-{order_id}",
                SCORE_REFUND_RISK,
                RefundRiskInput(
                    request_id=request_id,
                    customer_id=email.customer_id,
                    order_id=order_id,
                    amount_cents=int(request["amount_cents"]),
                    currency=str(request["currency"]),
                    reason=intent.reason[:200],
                ),
                timeout=flow.risk_invoke_timeout,
            )
        except inngest.StepError as error:
            # Scoring failed or timed out: fail safe, a human decides.
            reason = f"risk scoring unavailable: {error}"[:200]
            risk = RiskAssessment(score=1.0, level="high", reasons=[reason])
        auto = (
            int(request["amount_cents"]) <= flow.refund_auto_approve_max_cents
            and risk.level == "low"
        )

        async def record_risk() -> bool:
            await repo.record_risk(
                request_id, score=risk.score, level=risk.level, reasons=risk.reasons, auto=auto
            )
            return auto

        await step.run(f"record-risk-{order_id}", record_risk)

        approved, decided_by, timed_out = True, "auto", False
        if not auto:

            async def record_pending_approval() -> bool:
                return await repo.audit(
                    AuditAction.REFUND_APPROVAL_REQUESTED,
                    key=f"refund-approval-requested-{request_id}",
                    ctx=audit,
                    customer_id=email.customer_id,
                    ticket_id=email.ticket_id,
                    payload={"request_id": request_id, "risk_level": risk.level},
                )

            await step.run(f"request-refund-approval-{order_id}", record_pending_approval)
            await send_event(
                step,
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

            # The gateway stores a decision before it publishes it, so one made before the
            # wait below is registered (e.g. from `nerve pending` while the risk was scored) is
            # read here instead of being waited for; one landing between this read and the
            # wait's registration is read when the wait ends (`close-refund-wait`).
            async def read_stored_decision() -> list[str] | None:
                stored = await repo.refund_decision(request_id)
                return list(stored) if stored else None

            stored = await step.run(f"read-refund-decision-{order_id}", read_stored_decision)
            if stored is None:
                decided = await wait_for_event(
                    step,
                    f"await-refund-approval-{order_id}",
                    RefundApprovalDecided,
                    match={"request_id": request_id},
                    timeout=flow.refund_approval_timeout,
                )
                if decided is not None:
                    stored = ["approve" if decided.approved else "reject", decided.reviewer]
                else:
                    # Time the request out unless a reviewer decided it first: one conditional
                    # UPDATE settles the race with the gateway.
                    async def close_wait() -> list[str] | None:
                        won = await repo.close_refund_wait(request_id)
                        return list(won) if won else None

                    stored = await step.run(f"close-refund-wait-{order_id}", close_wait)
            if stored is None:
                approved, decided_by, timed_out = False, "timeout", True
            else:
                approved, decided_by = stored[0] == "approve", stored[1]

            async def record_decision() -> str:
                await repo.decide_refund(
                    request_id, approved=approved, decided_by=decided_by, timed_out=timed_out
                )
                return decided_by

            await step.run(f"record-refund-decision-{order_id}", record_decision)

        if approved:
            return await _issue_refund(ctx, order_id, request_id, decided_by)

        outcome = "timed_out" if timed_out else "rejected"

        async def audit_blocked() -> bool:
            return await repo.mark_refund_blocked(
                request_id, outcome=outcome, decided_by=decided_by, ctx=audit
            )

        await step.run(f"audit-refund-blocked-{order_id}", audit_blocked)
        if timed_out:
            message = "No reviewer approved the refund in time, so it was not issued."
        else:
            message = "A reviewer declined the refund for this order."
        return RefundDecision(approved=False, message=message), outcome

    async def _issue_refund(
        ctx: inngest.Context, order_id: str, request_id: str, decided_by: str
    ) -> tuple[RefundDecision, str]:
        """Issue an approved refund at most up to what the order has left, in three steps, so a
        crash between any two is safe: hold the amount on the order (or block the request when
        too little is left), call the provider with the request id as idempotency key (a retry
        repeats the same call and gets the same refund), then record the outcome."""
        step = ctx.step
        audit = AuditContext(run_id=ctx.run_id, function_id="handle-customer-email")

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
            message = _exceeds_refundable_message(reservation)
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

    # -- 3. escalate-with-human-approval ------------------------------------------------------

    @client.create_function(
        fn_id="escalate-with-human-approval",
        trigger=CustomerEscalationRequested.trigger(),
        concurrency=[inngest.Concurrency(limit=5)],
    )
    async def escalate_with_human_approval(ctx: inngest.Context) -> dict[str, Any]:
        request = CustomerEscalationRequested.from_event(ctx.event)
        step = ctx.step
        escalation_id = request.escalation_id
        audit = AuditContext(run_id=ctx.run_id, function_id="escalate-with-human-approval")

        await send_event(
            step,
            "notify-reviewer",
            EscalationReviewRequested(
                escalation_id=escalation_id,
                customer_id=request.customer_id,
                ticket_id=request.ticket_id,
                reason=request.reason,
            ),
            id=f"escalation-review-{escalation_id}",
        )

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
                timeout=flow.escalation_timeout,
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
        decision: str
        reviewer: str
        approval_id: str | None
        if stored is None:
            decision, reviewer, approval_id = "timeout", "timeout", None
        else:
            decision, reviewer, approval_id = stored[0], stored[1], stored[2]

        outcomes = {
            "approve": ("approved", AuditAction.ESCALATION_APPROVED, "audit-approved"),
            "edit": ("edited", AuditAction.ESCALATION_EDITED, "audit-edited"),
            "reject": ("rejected", AuditAction.ESCALATION_REJECTED, "audit-rejected"),
            "timeout": ("timed_out", AuditAction.ESCALATION_TIMED_OUT, "audit-timeout"),
        }
        outcome, action, step_id = outcomes[decision]

        async def audit_decision() -> bool:
            final_text = None
            if decision == "edit" and approval_id:
                final_text = await repo.edited_text(approval_id)
            return await repo.resolve_escalation(
                escalation_id,
                outcome=outcome,
                reviewer=reviewer,
                action=action,
                ctx=audit,
                final_text=final_text,
                approval_id=approval_id,
            )

        await step.run(step_id, audit_decision)
        summary = {"escalation_id": escalation_id, "outcome": outcome, "decided_via": decided_via}
        if decision == "reject":
            return {**summary, "posted": False}

        async def post_reply() -> str | None:
            draft_id = await repo.escalation_draft_id(escalation_id)
            if draft_id is None:
                return None
            text = await repo.escalation_text(escalation_id)
            message_id = await repo.post_draft(
                draft_id,
                audit_key=f"message-sent-{request.message_id}",
                ctx=audit,
                text=text,
                header=NO_REVIEW_HEADER if decision == "timeout" else None,
            )
            await repo.mark_escalation_posted(escalation_id, message_id)
            return message_id

        posted = await step.run("post-reply", post_reply)
        return {**summary, "posted": posted is not None}

    # -- 3b. close-cancelled-gates ------------------------------------------------------------

    gated = {f"{APP_ID}-handle-customer-email", f"{APP_ID}-escalate-with-human-approval"}

    @client.create_function(
        fn_id="close-cancelled-gates",
        trigger=InngestFunctionCancelled.trigger(
            if_exp=" || ".join(f"event.data.function_id == '{slug}'" for slug in sorted(gated))
        ),
    )
    async def close_cancelled_gates(ctx: inngest.Context) -> dict[str, Any]:
        """A cancelled gate (bulk cancel, REST cancel) can never decide its requests: end them
        `cancelled`, audited, so they leave `nerve pending` and a late decision gets 409."""
        cancelled = InngestFunctionCancelled.from_event(ctx.event)
        data = cancelled.event.get("data") or {}

        async def close() -> list[str]:
            if cancelled.function_id.endswith("-escalate-with-human-approval"):
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

        closed = await ctx.step.run("close-waiting-requests", close)
        return {"cancelled_run_id": cancelled.run_id, "closed": closed}

    # -- 4. daily-health-check + customer-health-check ----------------------------------------

    # Cron, plus an event for manual runs (Inngest's pattern): `POST .../invoke` on a singleton
    # is refused with 422 function_skipped by the real server while another run holds the
    # singleton. Either trigger shares the singleton; the fan-out's event ids keep it once per
    # customer per day.
    @client.create_function(
        fn_id="daily-health-check",
        trigger=[
            inngest.TriggerCron(cron="0 9 * * *"),
            SupportHealthCheckRunRequested.trigger(),
        ],
        singleton=inngest.Singleton(mode="skip"),
    )
    async def daily_health_check(ctx: inngest.Context) -> dict[str, Any]:
        async def fetch_eligible() -> dict[str, Any]:
            today = datetime.datetime.now(datetime.UTC).date()
            eligible = await repo.eligible_for_health_check(today)
            return {"date": today.isoformat(), "customers": [list(pair) for pair in eligible]}

        found = await ctx.step.run("fetch-eligible-customers", fetch_eligible)
        check_date = datetime.date.fromisoformat(found["date"])
        events = [
            (
                f"health-{customer_id}-{check_date.isoformat()}",
                CustomerHealthCheckRequested(
                    customer_id=customer_id, customer_tier=tier, check_date=check_date
                ),
            )
            for customer_id, tier in found["customers"]
        ]
        await send_events(ctx.step, "fan-out-health-checks", events)
        return {"customers_scheduled": len(events), "date": found["date"]}

    @client.create_function(
        fn_id="customer-health-check",
        trigger=CustomerHealthCheckRequested.trigger(),
        concurrency=[inngest.Concurrency(limit=5)],
        throttle=inngest.Throttle(limit=30, period=datetime.timedelta(minutes=1)),
        rate_limit=inngest.RateLimit(
            limit=1, period=datetime.timedelta(hours=24), key="event.data.customer_id"
        ),
    )
    async def customer_health_check(ctx: inngest.Context) -> dict[str, Any]:
        check = CustomerHealthCheckRequested.from_event(ctx.event)
        audit = AuditContext(run_id=ctx.run_id, function_id="customer-health-check")

        async def draft_outreach() -> str:
            try:
                ref = await repo.draft_proactive_outreach(
                    check.customer_id, check.check_date, ctx=audit
                )
            except NotFound as error:
                raise inngest.NonRetriableError(str(error)) from error
            return ref.draft_id

        draft_id = await ctx.step.run("draft-outreach", draft_outreach)
        await send_event(
            ctx.step,
            "emit-draft-created",
            SupportDraftCreated(draft_id=draft_id, customer_id=check.customer_id, kind="proactive"),
            id=f"draft-created-{draft_id}",
        )
        return {"customer_id": check.customer_id, "draft_id": draft_id}

    # -- 5. follow-up-after-reply -------------------------------------------------------------

    @client.create_function(
        fn_id="follow-up-after-reply",
        trigger=SupportDraftCreated.trigger(if_exp="event.data.kind == 'reply'"),
        cancel=[
            inngest.Cancel(
                event=CustomerEmailReceived.name,
                if_exp="async.data.customer_id == event.data.customer_id",
            )
        ],
    )
    async def follow_up_after_reply(ctx: inngest.Context) -> dict[str, Any]:
        created = SupportDraftCreated.from_event(ctx.event)
        audit = AuditContext(run_id=ctx.run_id, function_id="follow-up-after-reply")
        await ctx.step.sleep("wait-before-follow-up", flow.follow_up_delay)
        if created.ticket_id is None:
            return {"status": "no_ticket"}
        ticket_id = created.ticket_id

        async def reply_was_sent() -> bool:
            return await repo.draft_status(created.draft_id) == "sent"

        # An escalated reply that a reviewer rejected was never sent: nothing to follow up on.
        if not await ctx.step.run("check-reply-sent", reply_was_sent):
            return {"status": "reply_not_sent", "ticket_id": ticket_id}

        async def close_ticket() -> bool:
            try:
                return await repo.close_ticket(ticket_id, ctx=audit)
            except NotFound as error:
                raise inngest.NonRetriableError(str(error)) from error

        await ctx.step.run("close-ticket", close_ticket)

        async def request_feedback() -> str | None:
            try:
                return await repo.send_feedback_request(created.draft_id, ctx=audit)
            except NotFound as error:
                raise inngest.NonRetriableError(str(error)) from error

        message_id = await ctx.step.run("request-feedback", request_feedback)
        # A closed ticket is a resolved case: embed it for the similar-cases tool.
        await send_event(
            ctx.step,
            "emit-ticket-resolved",
            TicketResolved(
                ticket_id=ticket_id, customer_id=created.customer_id, resolved_by=APP_ID
            ),
            id=f"ticket-resolved-{ticket_id}",
        )
        return {"status": "closed", "ticket_id": ticket_id, "feedback_message_id": message_id}

    # -- 6. batch-embed-resolved-tickets ------------------------------------------------------

    @client.create_function(
        fn_id="batch-embed-resolved-tickets",
        trigger=TicketResolved.trigger(),
        batch_events=inngest.Batch(
            max_size=flow.embed_batch_size, timeout=flow.embed_batch_timeout
        ),
    )
    async def batch_embed_resolved_tickets(ctx: inngest.Context) -> dict[str, Any]:
        resolved = TicketResolved.from_events(list(ctx.events))
        ticket_ids = list(dict.fromkeys(event.ticket_id for event in resolved))

        # Load, embed (ONE provider call for the whole batch) and upsert in one step: the vectors
        # are too large for a step output, and the upsert keyed by ticket id makes a retry safe.
        async def embed_batch() -> dict[str, Any]:
            tickets = await repo.ticket_texts(ticket_ids)
            vectors = await deps.embedder.embed([ticket.text for ticket in tickets])
            stored = await repo.store_embeddings(
                list(zip(tickets, vectors, strict=True)),
                model=deps.embedder.model,
                batch_id=ctx.run_id,
            )
            return {"embedded": stored, "model": deps.embedder.model}

        result = await ctx.step.run("embed-batch", embed_batch)
        return {"events": len(resolved), "tickets": len(ticket_ids), **result}

    # -- 7. weekly-agent-metrics --------------------------------------------------------------

    @client.create_function(
        fn_id="weekly-agent-metrics",
        trigger=inngest.TriggerCron(cron="0 9 * * 1"),
    )
    async def weekly_agent_metrics(ctx: inngest.Context) -> dict[str, Any]:
        async def compute() -> dict[str, Any]:
            today = datetime.datetime.now(datetime.UTC).date()
            this_week = today - datetime.timedelta(days=today.weekday())
            last_week = this_week - datetime.timedelta(days=7)
            return await repo.compute_weekly_metrics(last_week, run_id=ctx.run_id)

        return await ctx.step.run("compute-weekly-metrics", compute)

    # -- 8. handle-refund-failed --------------------------------------------------------------

    @client.create_function(
        fn_id="handle-refund-failed",
        trigger=StripeChargeRefundFailed.trigger(),
    )
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

    # -- 9. apply-hand-sent-refund-decision ---------------------------------------------------

    @client.create_function(
        fn_id="apply-hand-sent-refund-decision",
        # Only the hand-sent shape: the gateway's decisions always carry `decision`.
        trigger=RefundApprovalDecided.trigger(if_exp="event.data.decision == null"),
    )
    async def apply_hand_sent_refund_decision(ctx: inngest.Context) -> dict[str, Any]:
        """The course's `{approved, customer_id}` (or `{request_id, approved}`): find the refund
        it means, store the decision like a reviewer's link does, publish the regular decision."""
        try:
            sent = RefundApprovalDecidedByHand.from_data(ctx.event.data)
        except EventDataError as error:
            raise inngest.NonRetriableError(str(error)) from error
        key = f"hand-decision-{ctx.event.id or ctx.run_id}"
        audit = AuditContext(run_id=ctx.run_id, function_id="apply-hand-sent-refund-decision")

        async def find_refund_request() -> dict[str, Any]:
            try:
                request_id, customer_id = await repo.find_decidable_refund(
                    request_id=sent.request_id, customer_id=sent.customer_id
                )
            except UnmatchedDecision as error:
                await repo.audit_unmatched_decision(
                    key=key, customer_id=sent.customer_id, reason=str(error), ctx=audit
                )
                return {"error": str(error)}
            return {"request_id": request_id, "customer_id": customer_id}

        found = await ctx.step.run("find-refund-request", find_refund_request)
        if "error" in found:
            raise inngest.NonRetriableError(str(found["error"]))
        request_id = str(found["request_id"])

        async def store_decision() -> dict[str, Any] | None:
            approval_id = await repo.store_hand_sent_decision(
                key=key, request_id=request_id, approved=sent.approved, reviewer="hand-sent-event"
            )
            if approval_id is None:
                return None
            now = datetime.datetime.now(datetime.UTC).isoformat()
            return {"approval_id": approval_id, "decided_at": now}

        stored = await ctx.step.run("store-decision", store_decision)
        if stored is None:
            raise inngest.NonRetriableError(f"refund request {request_id} was already decided")
        await send_event(
            ctx.step,
            "emit-refund-decision",
            RefundApprovalDecided(
                request_id=request_id,
                approved=sent.approved,
                decision="approve" if sent.approved else "reject",
                reviewer="hand-sent-event",
                approval_id=str(stored["approval_id"]),
                decided_at=datetime.datetime.fromisoformat(str(stored["decided_at"])),
            ),
            id=f"refund-decision-{request_id}",
        )
        return {"request_id": request_id, "approved": sent.approved}

    return [
        apply_hand_sent_refund_decision,
        handle_customer_email,
        escalate_with_human_approval,
        close_cancelled_gates,
        daily_health_check,
        customer_health_check,
        follow_up_after_reply,
        batch_embed_resolved_tickets,
        weekly_agent_metrics,
        handle_refund_failed,
    ]
