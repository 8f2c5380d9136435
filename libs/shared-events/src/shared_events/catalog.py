"""Every event Nerve sends or consumes: the contract between services.

Names are `vendor/object.action`. Payloads carry ids and small facts (claim check): the text of an
email lives in the system of record and the event names the message.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from .base import EventModel

Tier = Literal["enterprise", "pro", "standard"]
RiskLevel = Literal["low", "medium", "high"]
Id = str  # system-of-record ids, e.g. "cust_001", "msg_01J..."


class CustomerEmailReceived(EventModel):
    """A customer's email was stored; the support worker drafts a reply.

    Producer: ingest-gateway (Postmark inbound). Event id: `postmark-{MessageID}`.
    """

    name: ClassVar[str] = "customer/email.received"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway",)
    message_id: Id = Field(min_length=1, description="messages.id of the stored inbound email")
    provider_message_id: str = Field(min_length=1, description="Postmark MessageID")
    customer_id: Id = Field(min_length=1)
    customer_tier: Tier = Field(description="drives run priority: enterprise first")
    ticket_id: Id = Field(min_length=1)
    received_at: datetime


class StripeChargeRefundFailed(EventModel):
    """A refund failed at Stripe. Fans out to support-worker, risk-worker and notifier.

    Producer: ingest-gateway (Stripe `charge.refund.updated` with status failed, or
    `refund.failed`). Event id: Stripe's `evt_...` id.
    """

    name: ClassVar[str] = "stripe/charge.refund.failed"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway",)
    stripe_event_id: str = Field(min_length=1)
    charge_id: str = Field(min_length=1)
    refund_id: str = Field(min_length=1)
    customer_id: Id | None = Field(default=None, description="None when no customer matched")
    amount_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    failure_reason: str | None = None


class StripeChargeDisputeCreated(EventModel):
    """A customer disputed a charge. Producer: ingest-gateway. Event id: Stripe's `evt_...`."""

    name: ClassVar[str] = "stripe/charge.dispute.created"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway",)
    stripe_event_id: str = Field(min_length=1)
    dispute_id: str = Field(min_length=1)
    charge_id: str = Field(min_length=1)
    customer_id: Id | None = None
    amount_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    reason: str | None = None


class StripeChargeRefunded(EventModel):
    """A charge was (partly) refunded at Stripe. Producer: ingest-gateway. Id: `evt_...`."""

    name: ClassVar[str] = "stripe/charge.refunded"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway",)
    stripe_event_id: str = Field(min_length=1)
    charge_id: str = Field(min_length=1)
    customer_id: Id | None = None
    amount_refunded_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class RefundApprovalRequested(EventModel):
    """A refund needs a human decision. Producer: support-worker refund gate; consumer: notifier.

    Event id: `refund-approval-{request_id}`.
    """

    name: ClassVar[str] = "refund/approval.requested"
    producers: ClassVar[tuple[str, ...]] = ("support-worker",)
    request_id: Id = Field(min_length=1, description="refund_requests.id")
    customer_id: Id = Field(min_length=1)
    order_id: Id = Field(min_length=1)
    ticket_id: Id | None = None
    amount_cents: int = Field(gt=0)
    currency: str = Field(default="usd", min_length=3, max_length=3)
    risk_score: float = Field(ge=0, le=1)
    risk_level: RiskLevel


class RefundApprovalDecided(EventModel):
    """A reviewer decided a refund. Producer: ingest-gateway (decision link), after it stored the
    decision in `approvals`. Consumer: the waiting refund gate (matched on request_id).

    Event id: `refund-decision-{request_id}`.
    """

    name: ClassVar[str] = "refund/approval.decided"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway", "support-worker")
    request_id: Id = Field(min_length=1)
    approved: bool
    decision: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, description="reviewer id or handle, not an address")
    approval_id: Id = Field(min_length=1, description="approvals.id")
    decided_at: datetime


class CustomerEscalationRequested(EventModel):
    """The agent escalated a conversation to a senior reviewer. Producer and consumer:
    support-worker. Event id: `escalation-{escalation_id}`. The draft lives in `escalations`.
    """

    name: ClassVar[str] = "customer/escalation.requested"
    producers: ClassVar[tuple[str, ...]] = ("support-worker",)
    escalation_id: Id = Field(min_length=1)
    customer_id: Id = Field(min_length=1)
    ticket_id: Id = Field(min_length=1)
    message_id: Id = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=200, description="short reason, no PII")


class EscalationReviewRequested(EventModel):
    """Ask a reviewer to approve / edit / reject an escalated draft. Consumer: notifier.

    Event id: `escalation-review-{escalation_id}`.
    """

    name: ClassVar[str] = "escalation/review.requested"
    producers: ClassVar[tuple[str, ...]] = ("support-worker",)
    escalation_id: Id = Field(min_length=1)
    customer_id: Id = Field(min_length=1)
    ticket_id: Id = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=200)


class EscalationDecisionMade(EventModel):
    """A reviewer decided an escalation. Producer: ingest-gateway, after storing the decision
    (and any edited text) in `approvals`. Event id: `escalation-decision-{escalation_id}`.
    """

    name: ClassVar[str] = "escalation/decision.made"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway",)
    escalation_id: Id = Field(min_length=1)
    decision: Literal["approve", "edit", "reject"]
    reviewer: str = Field(min_length=1)
    approval_id: Id = Field(min_length=1, description="approvals.id; edited text lives there")
    decided_at: datetime


class SupportDraftCreated(EventModel):
    """A draft reply was saved. Consumers: notifier (reviewer ping), support-worker follow-up.

    Event id: `draft-created-{draft_id}`.
    """

    name: ClassVar[str] = "support/draft.created"
    producers: ClassVar[tuple[str, ...]] = ("support-worker",)
    draft_id: Id = Field(min_length=1)
    customer_id: Id = Field(min_length=1)
    ticket_id: Id | None = None
    message_id: Id | None = Field(default=None, description="the inbound message answered")
    kind: Literal["reply", "proactive", "follow_up", "refund_failed"] = "reply"


class CustomerHealthCheckRequested(EventModel):
    """Daily proactive check for one eligible customer. Producer: support-worker daily cron.

    Event id: `health-{customer_id}-{date}` so two invocations the same day fan out once.
    """

    name: ClassVar[str] = "customer/health_check.requested"
    producers: ClassVar[tuple[str, ...]] = ("support-worker",)
    customer_id: Id = Field(min_length=1)
    customer_tier: Tier
    check_date: date


class SupportHealthCheckRunRequested(EventModel):
    """Someone asked for the daily health check now, outside its 09:00 UTC cron: the manual
    trigger of `daily-health-check` (Inngest's pattern for running a cron function on demand).
    The fan-out stays once per customer per day (its event ids), however often this is sent.

    Producer: an operator (`nerve send support/health_check.run_requested -f requested_by=...`).
    """

    name: ClassVar[str] = "support/health_check.run_requested"
    producers: ClassVar[tuple[str, ...]] = ("operator",)
    requested_by: str = Field(min_length=1, max_length=200, description="who asked, for the logs")


class TicketResolved(EventModel):
    """A ticket was resolved. Producers: gateway admin API, support-worker. Consumer: batch
    embeddings. Event id: `ticket-resolved-{ticket_id}`.
    """

    name: ClassVar[str] = "ticket/resolved"
    producers: ClassVar[tuple[str, ...]] = ("ingest-gateway", "support-worker")
    ticket_id: Id = Field(min_length=1)
    customer_id: Id = Field(min_length=1)
    resolved_by: str = Field(min_length=1)


class RiskProfileUpdated(EventModel):
    """A customer's risk level changed. Producer: risk-worker; consumer: notifier (high alerts).

    Event id: `risk-profile-{customer_id}-{updated_at epoch ms}`.
    """

    name: ClassVar[str] = "risk/profile.updated"
    producers: ClassVar[tuple[str, ...]] = ("risk-worker",)
    customer_id: Id = Field(min_length=1)
    score: float = Field(ge=0, le=1)
    level: RiskLevel
    previous_level: RiskLevel | None = None
    reasons: list[str] = Field(default_factory=list, max_length=20)


class InngestFunctionFailed(EventModel):
    """Emitted by the engine when a run fails after its retries: the dead-letter signal.

    Consumer: notifier (ops alert). Never sent by Nerve.
    """

    name: ClassVar[str] = "inngest/function.failed"
    sendable: ClassVar[bool] = False
    producers: ClassVar[tuple[str, ...]] = ("engine",)
    function_id: str = Field(min_length=1, description="composite `<app>-<fn>` slug")
    run_id: str = Field(min_length=1)
    error: dict[str, Any] = Field(default_factory=dict)
    event: dict[str, Any] = Field(default_factory=dict)

    @property
    def error_summary(self) -> str:
        """`Name: message` from whichever keys the engine filled."""
        name = self.error.get("name") or "Error"
        message = self.error.get("message") or self.error.get("error") or ""
        return f"{name}: {message}" if message else str(name)


class InngestFunctionCancelled(EventModel):
    """Emitted by the engine when a run is cancelled (REST cancel, bulk cancel, `cancel_on`).

    Consumer: support-worker (a cancelled gate closes its waiting refund / escalation rows).
    Never sent by Nerve.
    """

    name: ClassVar[str] = "inngest/function.cancelled"
    sendable: ClassVar[bool] = False
    producers: ClassVar[tuple[str, ...]] = ("engine",)
    function_id: str = Field(min_length=1, description="composite `<app>-<fn>` slug")
    run_id: str = Field(min_length=1)
    event: dict[str, Any] = Field(
        default_factory=dict, description="the event that triggered the cancelled run"
    )


# -- the course's hand-sent shapes --------------------------------------------------------------
#
# The course tests the worker by sending events by hand (the dev server's MCP `send_event` or its
# Send Event form) in shapes that differ from the ones Nerve's own producers send. They are kept
# as documented variants of the same event names: same name, another schema (committed as
# `<name>+<variant>.v<version>.json`), handled by the same consumers.


class CustomerEmailReceivedInline(EventModel):
    """A hand-sent email with its text inline (course 002 D2/D4): `{email_text, customer_id}`.

    Consumer: support-worker handle-customer-email, which first stores the text as an inbound
    message (its own step `store-inline-email`, keyed by the event id), then continues exactly
    as for the gateway's claim-check event. Event id: any (the engine dedups on it for 24 h).
    """

    name: ClassVar[str] = "customer/email.received"
    variant: ClassVar[str | None] = "inline"
    producers: ClassVar[tuple[str, ...]] = ("operator",)
    email_text: str = Field(min_length=1, max_length=20_000, description="the email's text")
    customer_id: Id = Field(min_length=1, description="customers.id, e.g. cust_001")
    subject: str | None = Field(default=None, max_length=300)


class RefundApprovalDecidedByHand(EventModel):
    """A hand-sent refund decision (course 002 D5 `{approved, customer_id}`, or the concept
    chapters' `{request_id, approved}`).

    Consumer: support-worker apply-hand-sent-refund-decision. It resolves the request (the one
    named, else the customer's single pending refund; none or several pending is an audited,
    non-retriable error), stores the decision like the gateway does and publishes the regular
    `refund/approval.decided`, which resumes the waiting refund gate.
    """

    name: ClassVar[str] = "refund/approval.decided"
    variant: ClassVar[str | None] = "by-hand"
    producers: ClassVar[tuple[str, ...]] = ("operator",)
    approved: bool
    customer_id: Id | None = Field(default=None, description="decide this customer's pending one")
    request_id: Id | None = Field(default=None, description="refund_requests.id (wins if given)")
    rejection_message: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _names_a_request(self) -> RefundApprovalDecidedByHand:
        if not self.request_id and not self.customer_id:
            raise ValueError("give request_id or customer_id")
        return self


# The catalog: every event, by name.
CATALOG: dict[str, type[EventModel]] = {
    model.name: model
    for model in (
        CustomerEmailReceived,
        StripeChargeRefundFailed,
        StripeChargeDisputeCreated,
        StripeChargeRefunded,
        RefundApprovalRequested,
        RefundApprovalDecided,
        CustomerEscalationRequested,
        EscalationReviewRequested,
        EscalationDecisionMade,
        SupportDraftCreated,
        CustomerHealthCheckRequested,
        SupportHealthCheckRunRequested,
        TicketResolved,
        RiskProfileUpdated,
        InngestFunctionFailed,
        InngestFunctionCancelled,
    )
}


# Documented variants of catalog events (other shapes of the same name), by name.
VARIANTS: dict[str, tuple[type[EventModel], ...]] = {
    CustomerEmailReceived.name: (CustomerEmailReceivedInline,),
    RefundApprovalDecided.name: (RefundApprovalDecidedByHand,),
}


def parse_any(name: str, data: Any) -> EventModel:
    """The event's data as its catalog model, else as one of its variants; EventDataError names
    what each accepted shape is missing."""
    from .base import EventDataError

    problems = []
    for model in (model_for(name), *VARIANTS.get(name, ())):
        try:
            return model.from_data(data)
        except EventDataError as error:
            label = f"{model.variant} variant" if model.variant else "catalog shape"
            problems.append(f"as the {label}: {error}")
    raise EventDataError(f"{name} fits none of its shapes; " + " | ".join(problems))


def model_for(name: str) -> type[EventModel]:
    """The model for an event name; KeyError names the unknown event."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise KeyError(f"unknown event {name!r}; the catalog has: {known}") from None
