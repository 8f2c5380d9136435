"""The scoring rules as a table: facts in, score / level / reasons out."""

from __future__ import annotations

import dataclasses

import pytest
from risk_worker.scoring import RiskFacts, RiskPolicy, level_for, score

BASE = RiskFacts(
    customer_id="cust_t",
    tier="standard",
    account_age_days=400,
    refunds_last_90d=0,
    disputes_last_90d=0,
)


def facts(**changes: object) -> RiskFacts:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


# (case, facts, expected score, expected level, a reason that must be present)
TABLE = [
    ("clean profile", facts(), 0.0, "low", "no refunds or disputes in the last 90 days"),
    (
        "small partial refund, loyal enterprise",
        facts(tier="enterprise", requested_amount_cents=1000, order_amount_cents=4000),
        0.0,
        "low",
        "partial refund: $10.00 of $40.00 (25%)",
    ),
    (
        "full refund",
        facts(requested_amount_cents=4000, order_amount_cents=4000),
        0.1,
        "low",
        "full refund of the order value $40.00",
    ),
    (
        "refund above order value",
        facts(requested_amount_cents=5000, order_amount_cents=4000),
        0.5,
        "medium",
        "refund of $50.00 exceeds the order value $40.00",
    ),
    (
        "unknown order",
        facts(requested_amount_cents=5000, order_known=False),
        0.4,
        "medium",
        "the order was not found for this customer",
    ),
    ("one refund", facts(refunds_last_90d=1), 0.15, "low", "1 refund request in the last 90 days"),
    (
        "refunds are capped",
        facts(refunds_last_90d=10),
        0.45,
        "medium",
        "10 refund requests in the last 90 days",
    ),
    ("two disputes", facts(disputes_last_90d=2), 0.6, "medium", "2 disputes in the last 90 days"),
    (
        "disputes + refunds = high",
        facts(disputes_last_90d=1, refunds_last_90d=3),
        0.75,
        "high",
        "1 dispute in the last 90 days",
    ),
    ("new account", facts(account_age_days=3), 0.25, "low", "new account (3 days old)"),
    ("young account", facts(account_age_days=45), 0.1, "low", "young account (45 days old)"),
    (
        "failed refunds count a little",
        facts(failed_refunds_last_90d=2),
        0.1,
        "low",
        "2 failed refunds in the last 90 days",
    ),
    (
        "everything at once is clamped to 1",
        facts(
            account_age_days=1,
            refunds_last_90d=5,
            disputes_last_90d=4,
            requested_amount_cents=9000,
            order_amount_cents=100,
        ),
        1.0,
        "high",
        "refund of $90.00 exceeds the order value $1.00",
    ),
    (
        "tier trust never goes below zero",
        facts(tier="pro"),
        0.0,
        "low",
        "pro tier lowers the risk",
    ),
]


@pytest.mark.parametrize(
    ("case", "risk_facts", "expected_score", "expected_level", "reason"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_risk_scoring_table(
    case: str, risk_facts: RiskFacts, expected_score: float, expected_level: str, reason: str
) -> None:
    assessment = score(risk_facts)
    assert assessment.score == pytest.approx(expected_score), case
    assert assessment.level == expected_level, case
    assert reason in assessment.reasons, assessment.reasons


def test_thresholds_come_from_the_policy() -> None:
    strict = RiskPolicy(medium_threshold=0.1, high_threshold=0.2)
    assessment = score(facts(refunds_last_90d=1), strict)
    assert (assessment.score, assessment.level) == (0.15, "medium")
    assert level_for(0.2, strict) == "high"
    assert level_for(0.09, strict) == "low"


@pytest.mark.parametrize(("medium", "high"), [(0.5, 0.5), (0.0, 0.5), (0.6, 0.4), (0.3, 1.2)])
def test_incoherent_thresholds_are_refused(medium: float, high: float) -> None:
    with pytest.raises(ValueError, match="medium < high"):
        RiskPolicy(medium_threshold=medium, high_threshold=high)


def test_every_point_is_explained() -> None:
    """A score above zero always comes with a reason naming a risk factor."""
    risky = score(facts(disputes_last_90d=1))
    assert risky.score > 0
    assert any("dispute" in reason for reason in risky.reasons)
