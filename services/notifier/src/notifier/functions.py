"""The notifier's Inngest functions: the only module here that imports `inngest`.

Subscriptions compose a message and record it (one row per channel, natural dedup key), then
invoke `deliver-notification` once per row. Every delivery goes through that one function so
Inngest's throttle can hold each Slack webhook to Slack's published rate (1 message per second
per webhook): the throttle key is the channel + destination (one webhook per destination).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import inngest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from service_kit.db import Database
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
from .channels import Channel, OutboundMessage, PermanentDeliveryError, TransientDeliveryError
from .delivery import deliver_notification, record_notifications
from .routing import Routes

APP_ID = "notifier"
DELIVER_FN_ID = "deliver-notification"
# The SDK requires a trigger; nothing publishes this event: the function is invoked.
DELIVER_TRIGGER = "notifier/notification.deliver"
OPS_ALERT_FN_ID = "alert-ops-on-function-failure"


@dataclass
class NotifierDeps:
    db: Database
    routes: Routes
    channels: Mapping[str, Channel]
    decision_links: messages.DecisionLinks
    slack_throttle_period: datetime.timedelta = datetime.timedelta(seconds=1)
    deliver_timeout: datetime.timedelta = datetime.timedelta(hours=1)
    deliver_retries: int = 4
    known_functions: set[str] = field(default_factory=set)


class DeliverRequest(BaseModel):
    """The invoke payload of deliver-notification: ids only."""

    model_config = ConfigDict(extra="ignore")

    notification_id: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    throttle_key: str = Field(min_length=1)


def create_functions(client: inngest.Inngest, deps: NotifierDeps) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id=DELIVER_FN_ID,
        name="Deliver one notification (throttled per Slack webhook)",
        trigger=inngest.TriggerEvent(event=DELIVER_TRIGGER),
        throttle=inngest.Throttle(
            key="event.data.throttle_key", limit=1, period=deps.slack_throttle_period, burst=1
        ),
        retries=deps.deliver_retries,
    )
    async def deliver(ctx: inngest.Context) -> dict[str, str]:
        try:
            request = DeliverRequest.model_validate(
                {k: v for k, v in ctx.event.data.items() if k != "_inngest"}
            )
        except ValidationError as error:
            raise inngest.NonRetriableError(f"invalid deliver request: {error}") from error

        async def send() -> dict[str, str]:
            try:
                outcome = await deliver_notification(
                    deps.db,
                    deps.channels,
                    request.notification_id,
                    destination=request.destination,
                )
            except PermanentDeliveryError as error:
                raise inngest.NonRetriableError(str(error)) from error
            except TransientDeliveryError as error:
                if error.retry_after_seconds:
                    raise inngest.RetryAfterError(
                        str(error), datetime.timedelta(seconds=error.retry_after_seconds)
                    ) from error
                raise
            return outcome.to_summary()

        return await ctx.step.run(f"send-{request.channel}", send)

    deliver_fn = deliver

    async def notify(
        ctx: inngest.Context,
        compose: functools.partial[OutboundMessage],
        *,
        customer_id: str | None = None,
    ) -> dict[str, Any]:
        """Record the message (one row per channel), then deliver each row once."""

        async def record() -> list[dict[str, Any]]:
            message = compose()
            rows = await record_notifications(
                deps.db, message, deps.routes, run_id=ctx.run_id, customer_id=customer_id
            )
            return [
                {**row.to_summary(), "kind": message.kind, "dedup_key": message.dedup_key}
                for row in rows
            ]

        recorded = await ctx.step.run("record-notification", record)
        deliveries: list[dict[str, Any]] = []
        for row in recorded:
            if row["status"] in ("sent", "failed"):
                # A replay: sent stays sent; a permanent failure (4xx) is not retried by a
                # replay either (reset the row to pending to send it again on purpose).
                outcome = "already_sent" if row["status"] == "sent" else "failed_before"
                deliveries.append({"notification_id": row["id"], "outcome": outcome})
                continue
            payload = DeliverRequest(
                notification_id=row["id"],
                destination=row["destination"],
                channel=row["channel"],
                kind=row["kind"],
                throttle_key=deps.routes.throttle_key(
                    row["channel"], row["destination"], row["id"]
                ),
            )
            try:
                result = await ctx.step.invoke(
                    f"deliver-{row['channel']}",
                    function=deliver_fn,
                    data=payload.model_dump(),
                    timeout=deps.deliver_timeout,
                )
            except inngest.StepError as error:
                # deliver-notification failed for good: its own failure is the dead-letter
                # signal (an ops alert); this run reports it without failing a second time.
                deliveries.append(
                    {"notification_id": row["id"], "outcome": "failed", "error": error.message}
                )
                continue
            deliveries.append(dict(result) if isinstance(result, dict) else {"result": result})
        return {
            "dedup_key": recorded[0]["dedup_key"] if recorded else None,
            "deliveries": deliveries,
        }

    def parse(model: type[EventModel], ctx: inngest.Context) -> Any:
        return model.from_event(ctx.event)

    @client.create_function(
        fn_id="ping-reviewer-on-draft",
        name="Reviewer ping: a draft is ready",
        trigger=SupportDraftCreated.trigger(),
    )
    async def ping_reviewer(ctx: inngest.Context) -> dict[str, Any]:
        event = parse(SupportDraftCreated, ctx)
        return await notify(
            ctx, functools.partial(messages.draft_review_ping, event), customer_id=event.customer_id
        )

    @client.create_function(
        fn_id="request-refund-approval",
        name="Approval request: refund",
        trigger=RefundApprovalRequested.trigger(),
    )
    async def request_refund_approval(ctx: inngest.Context) -> dict[str, Any]:
        event = parse(RefundApprovalRequested, ctx)
        compose = functools.partial(messages.refund_approval_request, event, deps.decision_links)
        return await notify(ctx, compose, customer_id=event.customer_id)

    @client.create_function(
        fn_id="request-escalation-review",
        name="Approval request: escalation",
        trigger=EscalationReviewRequested.trigger(),
    )
    async def request_escalation_review(ctx: inngest.Context) -> dict[str, Any]:
        event = parse(EscalationReviewRequested, ctx)
        compose = functools.partial(messages.escalation_review_request, event, deps.decision_links)
        return await notify(ctx, compose, customer_id=event.customer_id)

    @client.create_function(
        fn_id="post-refund-failure-to-support",
        name="Slack: a Stripe refund failed",
        trigger=StripeChargeRefundFailed.trigger(),
    )
    async def post_refund_failure(ctx: inngest.Context) -> dict[str, Any]:
        event = parse(StripeChargeRefundFailed, ctx)
        return await notify(
            ctx,
            functools.partial(messages.refund_failed_post, event),
            customer_id=event.customer_id,
        )

    @client.create_function(
        fn_id="alert-high-risk-profile",
        name="Alert: a customer became high risk",
        trigger=RiskProfileUpdated.trigger(if_exp="event.data.level == 'high'"),
    )
    async def alert_high_risk(ctx: inngest.Context) -> dict[str, Any]:
        event = parse(RiskProfileUpdated, ctx)
        if event.level != "high":  # the trigger filters; this guards a replay with other data
            return {"skipped": f"level is {event.level}"}
        event_key = ctx.event.id or str(ctx.event.ts)
        compose = functools.partial(messages.high_risk_alert, event, event_key)
        return await notify(ctx, compose, customer_id=event.customer_id)

    @client.create_function(
        fn_id=OPS_ALERT_FN_ID,
        name="Ops alert: a run failed (dead letter)",
        trigger=InngestFunctionFailed.trigger(),
    )
    async def alert_ops(ctx: inngest.Context) -> dict[str, Any]:
        event = parse(InngestFunctionFailed, ctx)
        skip = ops_alert_loop_guard(event)
        if skip:
            return {"skipped": skip}
        return await notify(ctx, functools.partial(messages.ops_failure_alert, event))

    return [
        deliver_fn,
        ping_reviewer,
        request_refund_approval,
        request_escalation_review,
        post_refund_failure,
        alert_high_risk,
        alert_ops,
    ]


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
