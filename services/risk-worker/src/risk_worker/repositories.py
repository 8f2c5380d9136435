"""Risk facts from the system of record, and the risk_profiles writer.

Disputes and failed refunds are counted from the gateway's stored Stripe deliveries
(`inbound_webhooks`), refund requests from `refund_requests`. A delivery is attributed to a
customer by the `customer_id` the gateway resolved, or by its charge id matching one of the
customer's orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service_kit.models import (
    AuditLog,
    Customer,
    InboundWebhook,
    Order,
    RefundRequest,
    RiskProfile,
)
from shared_events import RefundRiskInput, RiskAssessment
from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .scoring import RiskFacts

LOOKBACK = timedelta(days=90)

# The gateway stores the catalog event name; Stripe's own type names are accepted too.
DISPUTE_EVENT_TYPES = ("stripe/charge.dispute.created", "charge.dispute.created")
REFUND_FAILED_EVENT_TYPES = ("stripe/charge.refund.failed", "refund.failed")


class UnknownCustomer(LookupError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id!r} does not exist")
        self.customer_id = customer_id


def _is_failed_refund() -> ColumnElement[bool]:
    return or_(
        InboundWebhook.event_type.in_(REFUND_FAILED_EVENT_TYPES),
        and_(
            InboundWebhook.event_type == "charge.refund.updated",
            InboundWebhook.payload["status"].as_string() == "failed",
        ),
    )


async def _count_deliveries(
    session: AsyncSession,
    kind: ColumnElement[bool],
    customer_id: str,
    charge_ids: list[str],
    since: datetime,
) -> int:
    belongs = or_(
        InboundWebhook.payload["customer_id"].as_string() == customer_id,
        InboundWebhook.payload["charge_id"].as_string().in_(charge_ids) if charge_ids else false(),
    )
    query = (
        select(func.count())
        .select_from(InboundWebhook)
        .where(
            InboundWebhook.source == "stripe", InboundWebhook.received_at >= since, kind, belongs
        )
    )
    return int((await session.execute(query)).scalar_one())


async def _load_customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise UnknownCustomer(customer_id)
    return customer


async def load_customer_facts(
    session: AsyncSession,
    customer_id: str,
    now: datetime,
    *,
    exclude_request_id: str | None = None,
) -> RiskFacts:
    """Facts about a customer's recent history (no refund under consideration)."""
    customer = await _load_customer(session, customer_id)
    since = now - LOOKBACK
    charge_ids = [
        charge
        for charge in (
            await session.scalars(
                select(Order.stripe_charge_id).where(
                    Order.customer_id == customer_id, Order.stripe_charge_id.is_not(None)
                )
            )
        ).all()
        if charge
    ]
    refunds_query = (
        select(func.count())
        .select_from(RefundRequest)
        .where(RefundRequest.customer_id == customer_id, RefundRequest.created_at >= since)
    )
    if exclude_request_id is not None:
        refunds_query = refunds_query.where(RefundRequest.id != exclude_request_id)
    refunds = int((await session.execute(refunds_query)).scalar_one())
    disputes = await _count_deliveries(
        session,
        InboundWebhook.event_type.in_(DISPUTE_EVENT_TYPES),
        customer_id,
        charge_ids,
        since,
    )
    failed = await _count_deliveries(session, _is_failed_refund(), customer_id, charge_ids, since)
    age_days = max(0, (now - customer.created_at).days)
    return RiskFacts(
        customer_id=customer_id,
        tier=customer.tier,  # type: ignore[arg-type]  # CHECK constraint keeps it in Tier
        account_age_days=age_days,
        refunds_last_90d=refunds,
        disputes_last_90d=disputes,
        failed_refunds_last_90d=failed,
    )


async def load_refund_facts(
    session: AsyncSession, request: RefundRiskInput, now: datetime
) -> RiskFacts:
    """Facts for scoring one refund request: history plus the amount vs the order's value.

    The request being scored is not counted among the customer's past refund requests.
    """
    history = await load_customer_facts(
        session, request.customer_id, now, exclude_request_id=request.request_id
    )
    order = await session.get(Order, request.order_id)
    known = order is not None and order.customer_id == request.customer_id
    return RiskFacts(
        customer_id=history.customer_id,
        tier=history.tier,
        account_age_days=history.account_age_days,
        refunds_last_90d=history.refunds_last_90d,
        disputes_last_90d=history.disputes_last_90d,
        failed_refunds_last_90d=history.failed_refunds_last_90d,
        requested_amount_cents=request.amount_cents,
        order_amount_cents=order.amount_cents if known and order is not None else None,
        order_known=known,
    )


@dataclass(frozen=True)
class ProfileChange:
    customer_id: str
    previous_level: str | None
    level: str
    score: float

    @property
    def level_changed(self) -> bool:
        # A customer without a profile is implicitly low risk.
        return (self.previous_level or "low") != self.level


async def save_risk_profile(
    session: AsyncSession,
    facts: RiskFacts,
    assessment: RiskAssessment,
    *,
    event_id: str | None,
    now: datetime,
) -> ProfileChange:
    """Upsert the customer's profile (absolute values: re-running writes the same row).

    The row is locked for the update on Postgres so two concurrent recomputations serialise
    (SQLite transactions already take the write lock up front).
    """
    existing = await session.scalar(
        select(RiskProfile).where(RiskProfile.customer_id == facts.customer_id).with_for_update()
    )
    previous = existing.level if existing is not None else None
    profile = existing or RiskProfile(customer_id=facts.customer_id, created_at=now)
    profile.score = assessment.score
    profile.level = assessment.level
    profile.reasons = list(assessment.reasons)
    profile.disputes = facts.disputes_last_90d
    profile.refund_failures = facts.failed_refunds_last_90d
    profile.last_event_id = event_id
    profile.updated_at = now
    if existing is None:
        session.add(profile)
    await session.flush()
    return ProfileChange(
        customer_id=facts.customer_id,
        previous_level=previous,
        level=assessment.level,
        score=assessment.score,
    )


async def previous_level_recorded(session: AsyncSession, audit_key: str) -> str | None:
    """The level before an already-applied event ("" when there was no profile), from the
    risk_profile_updated audit row of that event; None when the event was not applied yet."""
    payload = await session.scalar(select(AuditLog.payload).where(AuditLog.key == audit_key))
    if payload is None:
        return None
    previous = payload.get("previous_level")
    return previous if isinstance(previous, str) else ""
