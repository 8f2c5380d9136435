"""What each subscription says: catalog event in, channel-neutral messages out (pure).

Messages carry ids, amounts and levels — never customer addresses or email bodies. Each has a
natural dedup key derived from the event (a request id, a Stripe event id, a run id), so a retry
or a replay composes the same key and the notifications table refuses a second send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared_events import (
    EscalationReviewRequested,
    InngestFunctionFailed,
    RefundApprovalRequested,
    RiskProfileUpdated,
    StripeChargeRefundFailed,
    SupportDraftCreated,
)

from .channels import Link, OutboundMessage

# Destinations: logical audiences, each routed to Slack / email / the local sink by settings.
REVIEWERS = "reviewers"
APPROVALS = "approvals"
SUPPORT = "support"
RISK = "risk"
OPS = "ops"
DESTINATIONS = (REVIEWERS, APPROVALS, SUPPORT, RISK, OPS)

KNOWN_APPS = ("ingest-gateway", "support-worker", "risk-worker", "notifier")


def money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


def draft_review_ping(event: SupportDraftCreated) -> OutboundMessage:
    ticket = f" on ticket {event.ticket_id}" if event.ticket_id else ""
    return OutboundMessage(
        dedup_key=f"draft-created:{event.draft_id}",
        kind="reviewer_ping",
        destination=REVIEWERS,
        subject=f"Draft {event.draft_id} is ready for review",
        text=(
            f"A {event.kind.replace('_', ' ')} draft ({event.draft_id}) for customer "
            f"{event.customer_id}{ticket} is waiting for a reviewer."
        ),
        facts={"draft_id": event.draft_id, "customer_id": event.customer_id},
    )


@dataclass(frozen=True)
class DecisionLinks:
    """Signs one reviewer token per request and turns it into approve / edit / reject links.

    `issue(kind, request_id)` returns the decision URL (the gateway's `/decisions/{token}`);
    None when no signing secret is configured (the message then says so instead of linking).
    """

    issue: Callable[[str, str], str] | None

    def links(self, kind: str, request_id: str, decisions: tuple[str, ...]) -> tuple[Link, ...]:
        if self.issue is None:
            return ()
        url = self.issue(kind, request_id)
        return tuple(
            Link(decision.capitalize(), f"{url}?decision={decision}") for decision in decisions
        )


NO_LINKS = Link("Decision links unavailable", "set DECISION_TOKEN_SECRET on the notifier")


def _or_note(links: tuple[Link, ...]) -> tuple[Link, ...]:
    return links or (NO_LINKS,)


def refund_approval_request(
    event: RefundApprovalRequested, links: DecisionLinks
) -> OutboundMessage:
    ticket = f", ticket {event.ticket_id}" if event.ticket_id else ""
    return OutboundMessage(
        dedup_key=f"refund-approval:{event.request_id}",
        kind="approval_request",
        destination=APPROVALS,
        subject=f"Refund approval needed: {money(event.amount_cents, event.currency)} "
        f"({event.risk_level} risk)",
        text=(
            f"Refund request {event.request_id} for customer {event.customer_id}, order "
            f"{event.order_id}{ticket}: {money(event.amount_cents, event.currency)}. "
            f"Risk {event.risk_level} (score {event.risk_score:.2f})."
        ),
        links=_or_note(links.links("refund", event.request_id, ("approve", "reject"))),
        facts={"request_id": event.request_id, "customer_id": event.customer_id},
    )


def escalation_review_request(
    event: EscalationReviewRequested, links: DecisionLinks
) -> OutboundMessage:
    return OutboundMessage(
        dedup_key=f"escalation-review:{event.escalation_id}",
        kind="approval_request",
        destination=APPROVALS,
        subject=f"Escalation {event.escalation_id} needs a reviewer",
        text=(
            f"Escalated conversation on ticket {event.ticket_id} (customer {event.customer_id}): "
            f"{event.reason}. Approve the draft, edit it, or reject it."
        ),
        links=_or_note(
            links.links("escalation", event.escalation_id, ("approve", "edit", "reject"))
        ),
        facts={"request_id": event.escalation_id, "customer_id": event.customer_id},
    )


def refund_failed_post(event: StripeChargeRefundFailed) -> OutboundMessage:
    customer = event.customer_id or "an unmatched customer"
    reason = event.failure_reason or "no reason given"
    return OutboundMessage(
        dedup_key=f"refund-failed:{event.stripe_event_id}",
        kind="refund_failed",
        destination=SUPPORT,
        subject=f"Refund {event.refund_id} failed at Stripe",
        text=(
            f"Refund {event.refund_id} of {money(event.amount_cents, event.currency)} on charge "
            f"{event.charge_id} for {customer} failed: {reason}. The support worker is "
            "drafting a reply to the customer."
        ),
        facts={"refund_id": event.refund_id, "customer_id": event.customer_id or ""},
    )


def high_risk_alert(event: RiskProfileUpdated, event_key: str) -> OutboundMessage:
    was = f", was {event.previous_level}" if event.previous_level else ""
    reasons = "; ".join(event.reasons) or "no reasons recorded"
    return OutboundMessage(
        dedup_key=f"risk-high:{event.customer_id}:{event_key}",
        kind="risk_alert",
        destination=RISK,
        subject=f"Customer {event.customer_id} is now high risk",
        text=f"Risk score {event.score:.2f} (high{was}). Why: {reasons}.",
        facts={"customer_id": event.customer_id},
    )


def split_function_id(function_id: str) -> tuple[str, str]:
    """`support-worker-handle-customer-email` -> (`support-worker`, `handle-customer-email`)."""
    for app in KNOWN_APPS:
        if function_id.startswith(app + "-"):
            return app, function_id[len(app) + 1 :]
    return "unknown app", function_id


def ops_failure_alert(event: InngestFunctionFailed) -> OutboundMessage:
    app, function = split_function_id(event.function_id)
    trigger = str(event.event.get("name", "unknown event"))
    return OutboundMessage(
        dedup_key=f"ops-alert:{event.run_id}",
        kind="ops_alert",
        destination=OPS,
        subject=f"Run failed: {app} / {function}",
        text=(
            f"App {app}, function {function}, run {event.run_id} failed after its retries "
            f"(triggered by {trigger}). Error: {event.error_summary[:300]}"
        ),
        facts={"run_id": event.run_id, "function_id": event.function_id},
    )
