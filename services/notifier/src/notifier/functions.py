"""The notifier's Inngest functions: the only module here that imports `inngest`.

Each row of `subscriptions.SUBSCRIPTIONS` becomes one function built by `_create_subscription`:
it composes the row's message and records it (one row per channel, natural dedup key), then
invokes `deliver-notification` once per row. Every delivery goes through that one function so
Inngest's throttle can hold each Slack webhook to Slack's published rate (1 message per second
per webhook): the throttle key is the channel + destination (one webhook per destination).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import inngest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from service_kit.db import Database

from . import messages
from .channels import Channel, OutboundMessage, PermanentDeliveryError, TransientDeliveryError
from .delivery import deliver_notification, record_notifications
from .routing import Routes
from .subscriptions import (
    APP_ID,
    DELIVER_FN_ID,
    OPS_ALERT_FN_ID,
    SUBSCRIPTIONS,
    MessageContext,
    Subscription,
    customer_of,
)

__all__ = [
    "APP_ID",
    "DELIVER_FN_ID",
    "DELIVER_TRIGGER",
    "OPS_ALERT_FN_ID",
    "DeliverRequest",
    "NotifierDeps",
    "create_functions",
]

# The SDK requires a trigger; nothing publishes this event: the function is invoked.
DELIVER_TRIGGER = "notifier/notification.deliver"


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
    """`deliver-notification`, then one function per row of `SUBSCRIPTIONS`, in table order."""
    deliver_fn = _create_deliver(client, deps)
    return [
        deliver_fn,
        *(_create_subscription(client, deps, deliver_fn, row) for row in SUBSCRIPTIONS),
    ]


def _create_deliver(client: inngest.Inngest, deps: NotifierDeps) -> inngest.Function[Any]:
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

    return deliver


def _create_subscription(
    client: inngest.Inngest,
    deps: NotifierDeps,
    deliver_fn: inngest.Function[Any],
    row: Subscription[Any],
) -> inngest.Function[Any]:
    """One subscription: parse -> (skip?) -> record the composed message -> deliver each row."""

    @client.create_function(
        fn_id=row.fn_id, name=row.name, trigger=row.event.trigger(if_exp=row.if_exp)
    )
    async def subscription(ctx: inngest.Context) -> dict[str, Any]:
        event = row.event.from_event(ctx.event)
        skip = row.skip(event)
        if skip:
            return {"skipped": skip}
        context = MessageContext(
            decision_links=deps.decision_links, event_key=ctx.event.id or str(ctx.event.ts)
        )
        compose = functools.partial(row.compose, event, context)
        return await _notify(ctx, deps, deliver_fn, compose, customer_id=customer_of(event))

    return subscription


async def _notify(
    ctx: inngest.Context,
    deps: NotifierDeps,
    deliver_fn: inngest.Function[Any],
    compose: Callable[[], OutboundMessage],
    *,
    customer_id: str | None,
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
    deliveries = [await _deliver_row(ctx, deps, deliver_fn, row) for row in recorded]
    return {
        "dedup_key": recorded[0]["dedup_key"] if recorded else None,
        "deliveries": deliveries,
    }


async def _deliver_row(
    ctx: inngest.Context,
    deps: NotifierDeps,
    deliver_fn: inngest.Function[Any],
    row: dict[str, Any],
) -> dict[str, Any]:
    if row["status"] in ("sent", "failed"):
        # A replay: sent stays sent; a permanent failure (4xx) is not retried by a
        # replay either (reset the row to pending to send it again on purpose).
        outcome = "already_sent" if row["status"] == "sent" else "failed_before"
        return {"notification_id": row["id"], "outcome": outcome}
    payload = DeliverRequest(
        notification_id=row["id"],
        destination=row["destination"],
        channel=row["channel"],
        kind=row["kind"],
        throttle_key=deps.routes.throttle_key(row["channel"], row["destination"], row["id"]),
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
        return {"notification_id": row["id"], "outcome": "failed", "error": error.message}
    return dict(result) if isinstance(result, dict) else {"result": result}
