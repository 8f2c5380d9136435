"""What the notifier subscribes to: one row per catalog event, naming the message it composes.

`functions.py` turns each row into an Inngest function with the same shape: parse the event,
skip it when the row's guard says so, record the composed message (one row per channel), then
deliver each row once. Adding a notification is adding a composer in `messages.py` and a row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared_events import (
    EscalationReviewRequested,
    EventModel,
    InngestFunctionFailed,
    RefundApprovalRequested,
    RiskProfileUpdated,
    StripeChargeRefundFailed,
    SupportDraftCreated,
)

from . import messages
from .channels import OutboundMessage

APP_ID = "notifier"
DELIVER_FN_ID = "deliver-notification"
OPS_ALERT_FN_ID = "alert-ops-on-function-failure"

EventT = TypeVar("EventT", bound=EventModel)


@dataclass(frozen=True)
class MessageContext:
    """What a composer may use besides the event itself."""

    decision_links: messages.DecisionLinks
    # the triggering event's id (its timestamp when it has none): a dedup key part for events
    # that carry no natural id of their own
    event_key: str


def _never_skip(event: EventModel) -> str | None:
    return None


@dataclass(frozen=True)
class Subscription(Generic[EventT]):
    """One Inngest function: `event` in, `compose(event, context)` recorded and delivered."""

    fn_id: str
    name: str
    event: type[EventT]
    compose: Callable[[EventT, MessageContext], OutboundMessage]
    # the trigger's `if` expression (the engine filters; `skip` guards a replay with other data)
    if_exp: str | None = None
    # a reason not to notify (returned as the run's output), or None to notify
    skip: Callable[[EventT], str | None] = _never_skip


def customer_of(event: EventModel) -> str | None:
    """The customer a notification is about, stored on its rows (the dead-letter event has none)."""
    customer_id = getattr(event, "customer_id", None)
    return customer_id if isinstance(customer_id, str) else None


def not_high_risk(event: RiskProfileUpdated) -> str | None:
    return None if event.level == "high" else f"level is {event.level}"


def ops_alert_loop_guard(event: InngestFunctionFailed) -> str | None:
    """A failing ops alert must not raise another ops alert (an endless loop when the ops
    channel itself is broken). Its failure stays visible in the notifications table."""
    if event.function_id == f"{APP_ID}-{OPS_ALERT_FN_ID}":
        return "the ops alert function itself failed"
    if event.function_id == f"{APP_ID}-{DELIVER_FN_ID}":
        original = event.event.get("data") or {}
        if isinstance(original, dict) and original.get("kind") == "ops_alert":
            return "delivering an ops alert failed"
    return None


# Not annotated as `tuple[Subscription[Any], ...]`: inferred per row, so mypy checks that each
# composer takes its own row's event model.
SUBSCRIPTIONS = (
    Subscription(
        fn_id="ping-reviewer-on-draft",
        name="Reviewer ping: a draft is ready",
        event=SupportDraftCreated,
        compose=lambda event, _: messages.draft_review_ping(event),
    ),
    Subscription(
        fn_id="request-refund-approval",
        name="Approval request: refund",
        event=RefundApprovalRequested,
        compose=lambda event, context: messages.refund_approval_request(
            event, context.decision_links
        ),
    ),
    Subscription(
        fn_id="request-escalation-review",
        name="Approval request: escalation",
        event=EscalationReviewRequested,
        compose=lambda event, context: messages.escalation_review_request(
            event, context.decision_links
        ),
    ),
    Subscription(
        fn_id="post-refund-failure-to-support",
        name="Slack: a Stripe refund failed",
        event=StripeChargeRefundFailed,
        compose=lambda event, _: messages.refund_failed_post(event),
    ),
    Subscription(
        fn_id="alert-high-risk-profile",
        name="Alert: a customer became high risk",
        event=RiskProfileUpdated,
        compose=lambda event, context: messages.high_risk_alert(event, context.event_key),
        if_exp="event.data.level == 'high'",
        skip=not_high_risk,
    ),
    Subscription(
        fn_id=OPS_ALERT_FN_ID,
        name="Ops alert: a run failed (dead letter)",
        event=InngestFunctionFailed,
        compose=lambda event, _: messages.ops_failure_alert(event),
        skip=ops_alert_loop_guard,
    ),
)
