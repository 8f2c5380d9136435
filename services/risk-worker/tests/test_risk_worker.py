"""risk-worker against the real database (SQLite and Postgres): facts, profiles, and both
functions through `inngest.experimental.mocked`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import inngest
import pytest
from inngest.experimental import mocked
from risk_worker.functions import RiskDeps, create_functions
from risk_worker.repositories import load_customer_facts, load_refund_facts
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import (
    AuditLog,
    Customer,
    InboundWebhook,
    Order,
    RefundRequest,
    RiskProfile,
)
from service_kit.testing import loop_free_database
from shared_events import (
    RefundRiskInput,
    RiskAssessment,
    StripeChargeDisputeCreated,
    StripeChargeRefundFailed,
)
from sqlalchemy import func, select

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class World:
    """Creates an isolated customer (unique ids) with orders and history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def customer(
        self, *, tier: str = "standard", age_days: int = 400
    ) -> tuple[str, str, str]:
        customer_id, order_id = new_id("cust"), new_id("ord")
        charge_id = f"ch_{new_id('t')}"
        async with self.db.transaction() as session:
            session.add(
                Customer(
                    id=customer_id,
                    email=f"{customer_id}@example.com",
                    name="Test Customer",
                    tier=tier,
                    created_at=NOW - timedelta(days=age_days),
                )
            )
            await session.flush()
            session.add(
                Order(
                    id=order_id,
                    customer_id=customer_id,
                    amount_cents=4000,
                    stripe_charge_id=charge_id,
                )
            )
        return customer_id, order_id, charge_id

    async def refund_request(self, customer_id: str, order_id: str, *, days_ago: int) -> str:
        request_id = new_id("rr")
        async with self.db.transaction() as session:
            session.add(
                RefundRequest(
                    id=request_id,
                    idempotency_key=request_id,
                    customer_id=customer_id,
                    order_id=order_id,
                    amount_cents=1000,
                    created_at=NOW - timedelta(days=days_ago),
                )
            )
        return request_id

    async def stripe_delivery(
        self,
        event_type: str,
        *,
        customer_id: str | None,
        charge_id: str,
        days_ago: int = 1,
    ) -> str:
        """A row shaped like the gateway stores it (catalog event name, summary payload)."""
        evt = f"evt_{new_id('t')}"
        async with self.db.transaction() as session:
            session.add(
                InboundWebhook(
                    id=new_id("wh"),
                    source="stripe",
                    external_id=evt,
                    event_type=event_type,
                    payload={"charge_id": charge_id, "customer_id": customer_id, "amount": 4000},
                    received_at=NOW - timedelta(days=days_ago),
                )
            )
        return evt


@pytest.fixture
def world(database: Database) -> World:
    return World(database)


async def test_facts_count_history_within_90_days(world: World, database: Database) -> None:
    customer, order, charge = await world.customer(tier="pro", age_days=45)
    await world.refund_request(customer, order, days_ago=10)
    await world.refund_request(customer, order, days_ago=200)  # too old
    current = await world.refund_request(customer, order, days_ago=0)  # the one being scored
    # attributed by customer id, by charge id only, and one outside the window
    await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id=customer, charge_id="x"
    )
    await world.stripe_delivery("stripe/charge.dispute.created", customer_id=None, charge_id=charge)
    await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id=customer, charge_id=charge, days_ago=120
    )
    await world.stripe_delivery(
        "stripe/charge.refund.failed", customer_id=customer, charge_id=charge
    )
    # someone else's dispute
    await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id="cust_001", charge_id="y"
    )

    request = RefundRiskInput(
        request_id=current, customer_id=customer, order_id=order, amount_cents=5000
    )
    async with database.session() as session:
        facts = await load_refund_facts(session, request, NOW)
        history = await load_customer_facts(session, customer, NOW)
    assert (facts.tier, facts.account_age_days) == ("pro", 45)
    assert (facts.refunds_last_90d, facts.disputes_last_90d, facts.failed_refunds_last_90d) == (
        1,
        2,
        1,
    )
    assert (facts.requested_amount_cents, facts.order_amount_cents, facts.order_known) == (
        5000,
        4000,
        True,
    )
    assert history.refunds_last_90d == 2  # the current request counts for the profile


async def test_someone_elses_order_is_unknown(world: World, database: Database) -> None:
    customer, _, _ = await world.customer()
    request = RefundRiskInput(
        request_id="rr_x", customer_id=customer, order_id="ord_1001", amount_cents=100
    )
    async with database.session() as session:
        facts = await load_refund_facts(session, request, NOW)
    assert (facts.order_known, facts.order_amount_cents) == (False, None)


class Harness:
    def __init__(self, db: Database) -> None:
        self.client = mocked.Inngest(app_id="risk-worker", is_production=False)
        self.functions = {
            fn.local_id: fn
            for fn in create_functions(self.client, RiskDeps(db=db, clock=lambda: NOW))
        }

    async def trigger(self, fn_id: str, event: inngest.Event) -> Any:
        return await asyncio.to_thread(mocked.trigger, self.functions[fn_id], event, self.client)


@pytest.fixture
async def harness(database_url: str) -> Any:
    db = loop_free_database(database_url)
    yield Harness(db)
    await db.dispose()


async def test_score_refund_risk_returns_an_assessment(world: World, harness: Harness) -> None:
    customer, order, charge = await world.customer(age_days=10)
    await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id=customer, charge_id=charge
    )
    payload = RefundRiskInput(
        request_id="rr_1", customer_id=customer, order_id=order, amount_cents=5000
    ).model_dump(mode="json")
    result = await harness.trigger(
        "score-refund-risk", inngest.Event(name="inngest/function.invoked", data=payload)
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assessment = RiskAssessment.model_validate(result.output)
    # over order value 0.5 + one dispute 0.3 + new account 0.25 -> clamped to 1
    assert (assessment.score, assessment.level) == (1.0, "high")
    assert "refund of $50.00 exceeds the order value $40.00" in assessment.reasons
    assert "new account (10 days old)" in assessment.reasons


async def test_score_refund_risk_refuses_bad_input(harness: Harness) -> None:
    bad = inngest.Event(
        name="inngest/function.invoked",
        data={"request_id": "rr", "customer_id": "cust_001", "order_id": "o", "amount_cents": 0},
    )
    result = await harness.trigger("score-refund-risk", bad)
    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, inngest.NonRetriableError)
    assert "amount_cents" in str(result.error)
    unknown = inngest.Event(
        name="inngest/function.invoked",
        data={"request_id": "rr", "customer_id": "cust_nobody", "order_id": "o", "amount_cents": 5},
    )
    result = await harness.trigger("score-refund-risk", unknown)
    assert result.status is mocked.Status.FAILED
    assert "cust_nobody" in str(result.error)


def dispute(customer: str, charge: str, evt: str) -> inngest.Event:
    return StripeChargeDisputeCreated(
        stripe_event_id=evt,
        dispute_id=f"dp_{evt}",
        charge_id=charge,
        customer_id=customer,
        amount_cents=4000,
        currency="usd",
    ).to_event(id=evt)


async def test_profile_update_emits_only_when_the_level_changes(
    world: World, harness: Harness, database: Database
) -> None:
    customer, _, charge = await world.customer()
    # first dispute: 0.3 -> still low (no event)
    first_evt = await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id=customer, charge_id=charge
    )
    first = await harness.trigger("update-risk-profile", dispute(customer, charge, first_evt))
    assert first.status is mocked.Status.COMPLETED, first.error
    assert (first.output["level"], first.output["emitted"]) == ("low", None)
    # second dispute: 0.6 -> medium (announced)
    second_evt = await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id=customer, charge_id=charge
    )
    second = await harness.trigger("update-risk-profile", dispute(customer, charge, second_evt))
    assert second.output["level"] == "medium"
    assert second.output["previous_level"] == "low"
    assert second.output["emitted"] == f"risk-profile-{customer}-{second_evt}"
    async with database.session() as session:
        profile = await session.get(RiskProfile, customer)
        audits = await session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.customer_id == customer)
        )
    assert profile is not None
    assert (profile.level, profile.score, profile.disputes) == ("medium", 0.6, 2)
    assert profile.last_event_id == second_evt
    assert "2 disputes in the last 90 days" in profile.reasons
    assert audits == 2


async def test_a_replayed_profile_update_announces_the_same_event_id(
    world: World, harness: Harness
) -> None:
    """Re-running a run whose write committed (lost step result, or a replay) must neither lose
    nor duplicate the announcement: same previous level, same event id (engine-deduplicated)."""
    customer, _, charge = await world.customer(age_days=5)  # new account: 0.25
    evt = await world.stripe_delivery(
        "stripe/charge.dispute.created", customer_id=customer, charge_id=charge
    )
    first = await harness.trigger("update-risk-profile", dispute(customer, charge, evt))
    again = await harness.trigger("update-risk-profile", dispute(customer, charge, evt))
    assert first.output["level"] == again.output["level"] == "medium"
    assert first.output["emitted"] == again.output["emitted"] == f"risk-profile-{customer}-{evt}"
    assert again.output["previous_level"] is None


async def test_refund_failure_also_updates_the_profile(world: World, harness: Harness) -> None:
    customer, _, charge = await world.customer()
    evt = await world.stripe_delivery(
        "stripe/charge.refund.failed", customer_id=customer, charge_id=charge
    )
    event = StripeChargeRefundFailed(
        stripe_event_id=evt,
        charge_id=charge,
        refund_id="re_1",
        customer_id=customer,
        amount_cents=4000,
        currency="usd",
    ).to_event(id=evt)
    result = await harness.trigger("update-risk-profile", event)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert "1 failed refund in the last 90 days" in result.output["reasons"]
