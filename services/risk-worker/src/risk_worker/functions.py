"""The risk-worker's Inngest functions: the only module here that imports `inngest`.

- `score-refund-risk` is invoked by support-worker through `shared_events.SCORE_REFUND_RISK`.
- `update-risk-profile` recomputes a customer's profile after refund failures and disputes,
  debounced per customer (a burst recomputes once), and announces a level change.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import inngest
from service_kit.audit import AuditAction, record_audit
from service_kit.db import Database
from service_kit.models import utcnow
from shared_events import (
    SCORE_REFUND_RISK,
    InvokeInputError,
    RiskAssessment,
    RiskProfileUpdated,
    StripeChargeDisputeCreated,
    StripeChargeRefundFailed,
)
from shared_events.steps import send_event

from .repositories import (
    UnknownCustomer,
    load_customer_facts,
    load_refund_facts,
    previous_level_recorded,
    save_risk_profile,
)
from .scoring import RiskPolicy, score

APP_ID = SCORE_REFUND_RISK.app_id
# The SDK requires a trigger; nothing publishes this event: the function is invoked.
SCORE_TRIGGER = "risk/refund_risk.score"


@dataclass
class RiskDeps:
    db: Database
    policy: RiskPolicy = field(default_factory=RiskPolicy)
    debounce_period: datetime.timedelta = datetime.timedelta(seconds=30)
    debounce_timeout: datetime.timedelta = datetime.timedelta(minutes=5)
    clock: Callable[[], datetime.datetime] = utcnow


def create_functions(client: inngest.Inngest, deps: RiskDeps) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id=SCORE_REFUND_RISK.function_id,
        name="Score refund risk (invoked)",
        trigger=inngest.TriggerEvent(event=SCORE_TRIGGER),
        retries=2,
    )
    async def score_refund_risk(ctx: inngest.Context) -> dict[str, Any]:
        try:
            request = SCORE_REFUND_RISK.parse_input(ctx.event.data)
        except InvokeInputError as error:
            raise inngest.NonRetriableError(str(error)) from error

        async def assess() -> dict[str, Any]:
            async with deps.db.session() as session:
                try:
                    facts = await load_refund_facts(session, request, deps.clock())
                except UnknownCustomer as error:
                    raise inngest.NonRetriableError(str(error)) from error
            return score(facts, deps.policy).model_dump(mode="json")

        # Read-only, memoized so a retry of the caller sees the same answer.
        assessment = await ctx.step.run("assess-refund-risk", assess)
        return RiskAssessment.model_validate(assessment).model_dump(mode="json")

    @client.create_function(
        fn_id="update-risk-profile",
        name="Update risk profile (debounced per customer)",
        trigger=[
            StripeChargeRefundFailed.trigger(if_exp="event.data.customer_id != null"),
            StripeChargeDisputeCreated.trigger(if_exp="event.data.customer_id != null"),
        ],
        debounce=inngest.Debounce(
            key="event.data.customer_id",
            period=deps.debounce_period,
            timeout=deps.debounce_timeout,
        ),
    )
    async def update_risk_profile(ctx: inngest.Context) -> dict[str, Any]:
        model = (
            StripeChargeDisputeCreated
            if ctx.event.name == StripeChargeDisputeCreated.name
            else StripeChargeRefundFailed
        )
        event = model.from_event(ctx.event)
        customer_id = event.customer_id
        if customer_id is None:  # the trigger filters these; a replay might not
            return {"skipped": "the event names no customer"}
        event_key = event.stripe_event_id

        async def recompute() -> dict[str, Any]:
            now = deps.clock()
            async with deps.db.transaction() as session:
                try:
                    facts = await load_customer_facts(session, customer_id, now)
                except UnknownCustomer as error:
                    raise inngest.NonRetriableError(str(error)) from error
                assessment = score(facts, deps.policy)
                audit_key = f"risk-profile:{customer_id}:{event_key}"
                # A retry after a commit whose step result was lost: the audit row remembers
                # the level before this event, so a level change is still announced.
                applied_before = await previous_level_recorded(session, audit_key)
                change = await save_risk_profile(
                    session, facts, assessment, event_id=event_key, now=now
                )
                if applied_before is not None:
                    change = replace(change, previous_level=applied_before or None)
                await record_audit(
                    session,
                    AuditAction.RISK_PROFILE_UPDATED,
                    key=audit_key,
                    actor="risk-worker",
                    customer_id=customer_id,
                    run_id=ctx.run_id,
                    function_id=f"{APP_ID}-update-risk-profile",
                    payload={
                        "score": assessment.score,
                        "level": assessment.level,
                        "previous_level": change.previous_level,
                        "event": event_key,
                    },
                )
            return {
                "customer_id": customer_id,
                "score": assessment.score,
                "level": assessment.level,
                "previous_level": change.previous_level,
                "level_changed": change.level_changed,
                "reasons": assessment.reasons,
                "updated_at_ms": int(now.timestamp() * 1000),
            }

        profile = await ctx.step.run("save-risk-profile", recompute)
        if not profile["level_changed"]:
            return {**profile, "emitted": None}
        # Named after the event that caused the change, so a retry or a replay of this run
        # publishes the same id and the engine's 24 h id dedup keeps one.
        emitted_id = f"risk-profile-{customer_id}-{event_key}"
        await send_event(
            ctx.step,
            "emit-risk-profile-updated",
            RiskProfileUpdated(
                customer_id=customer_id,
                score=profile["score"],
                level=profile["level"],
                previous_level=profile["previous_level"],
                reasons=profile["reasons"][:20],
            ),
            id=emitted_id,
        )
        return {**profile, "emitted": emitted_id}

    return [score_refund_risk, update_risk_profile]
