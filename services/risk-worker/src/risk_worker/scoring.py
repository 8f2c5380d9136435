"""Explainable, rule-based refund risk scoring (pure: no database, no engine).

Every rule adds (or, for loyal tiers, removes) points and says why in plain words, so a reviewer
reading an approval request sees exactly which facts moved the score. The score is clamped to
0..1 and mapped to a level by the policy's thresholds (configured in settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared_events import RiskAssessment, RiskLevel, Tier


@dataclass(frozen=True)
class RiskFacts:
    """What the rules look at. Refund fields are None when scoring a customer profile."""

    customer_id: str
    tier: Tier
    account_age_days: int
    refunds_last_90d: int
    disputes_last_90d: int
    failed_refunds_last_90d: int = 0
    requested_amount_cents: int | None = None
    # None when the order is unknown or belongs to someone else.
    order_amount_cents: int | None = None
    order_known: bool = True


@dataclass(frozen=True)
class RiskPolicy:
    """Weights and thresholds; every field comes from settings (see RiskSettings)."""

    medium_threshold: float = 0.35
    high_threshold: float = 0.65
    # amount vs order value
    over_order_value_points: float = 0.5
    full_refund_points: float = 0.1
    unknown_order_points: float = 0.4
    # history in the last 90 days
    points_per_refund: float = 0.15
    max_refund_points: float = 0.45
    points_per_dispute: float = 0.3
    max_dispute_points: float = 0.6
    points_per_failed_refund: float = 0.05
    max_failed_refund_points: float = 0.15
    # account age
    new_account_days: int = 30
    new_account_points: float = 0.25
    young_account_days: int = 90
    young_account_points: float = 0.1
    # tier (negative = trust)
    tier_points: dict[str, float] = field(
        default_factory=lambda: {"enterprise": -0.1, "pro": -0.05, "standard": 0.0}
    )

    def __post_init__(self) -> None:
        if not 0 < self.medium_threshold < self.high_threshold <= 1:
            raise ValueError(
                "risk thresholds must satisfy 0 < medium < high <= 1, got "
                f"medium={self.medium_threshold} high={self.high_threshold}"
            )


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def level_for(score: float, policy: RiskPolicy) -> RiskLevel:
    if score >= policy.high_threshold:
        return "high"
    if score >= policy.medium_threshold:
        return "medium"
    return "low"


def score(facts: RiskFacts, policy: RiskPolicy | None = None) -> RiskAssessment:
    """Score a refund request (refund fields set) or a customer profile (refund fields None)."""
    policy = policy or RiskPolicy()
    points = 0.0
    reasons: list[str] = []

    if facts.requested_amount_cents is not None:
        requested = facts.requested_amount_cents
        if not facts.order_known or facts.order_amount_cents is None:
            points += policy.unknown_order_points
            reasons.append("the order was not found for this customer")
        elif requested > facts.order_amount_cents:
            points += policy.over_order_value_points
            reasons.append(
                f"refund of {_money(requested)} exceeds the order value "
                f"{_money(facts.order_amount_cents)}"
            )
        elif requested == facts.order_amount_cents:
            points += policy.full_refund_points
            reasons.append(f"full refund of the order value {_money(requested)}")
        else:
            share = requested / facts.order_amount_cents if facts.order_amount_cents else 0.0
            reasons.append(
                f"partial refund: {_money(requested)} of {_money(facts.order_amount_cents)} "
                f"({share:.0%})"
            )

    if facts.refunds_last_90d:
        points += min(policy.max_refund_points, policy.points_per_refund * facts.refunds_last_90d)
        reasons.append(f"{_plural(facts.refunds_last_90d, 'refund request')} in the last 90 days")
    if facts.disputes_last_90d:
        points += min(
            policy.max_dispute_points, policy.points_per_dispute * facts.disputes_last_90d
        )
        reasons.append(f"{_plural(facts.disputes_last_90d, 'dispute')} in the last 90 days")
    if facts.failed_refunds_last_90d:
        points += min(
            policy.max_failed_refund_points,
            policy.points_per_failed_refund * facts.failed_refunds_last_90d,
        )
        reasons.append(
            f"{_plural(facts.failed_refunds_last_90d, 'failed refund')} in the last 90 days"
        )
    if not (facts.refunds_last_90d or facts.disputes_last_90d):
        reasons.append("no refunds or disputes in the last 90 days")

    age = facts.account_age_days
    if age < policy.new_account_days:
        points += policy.new_account_points
        reasons.append(f"new account ({_plural(age, 'day')} old)")
    elif age < policy.young_account_days:
        points += policy.young_account_points
        reasons.append(f"young account ({_plural(age, 'day')} old)")

    tier_adjustment = policy.tier_points.get(facts.tier, 0.0)
    if tier_adjustment:
        points += tier_adjustment
        direction = "lowers" if tier_adjustment < 0 else "raises"
        reasons.append(f"{facts.tier} tier {direction} the risk")

    final = round(min(1.0, max(0.0, points)), 4)
    return RiskAssessment(score=final, level=level_for(final, policy), reasons=reasons)
