"""Properties of the scoring rules over generated facts (hypothesis)."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st
from risk_worker.scoring import RiskFacts, score

facts_strategy = st.builds(
    RiskFacts,
    customer_id=st.just("cust_p"),
    tier=st.sampled_from(["enterprise", "pro", "standard"]),
    account_age_days=st.integers(0, 3000),
    refunds_last_90d=st.integers(0, 50),
    disputes_last_90d=st.integers(0, 50),
    failed_refunds_last_90d=st.integers(0, 50),
    requested_amount_cents=st.one_of(st.none(), st.integers(1, 10_000_000)),
    order_amount_cents=st.one_of(st.none(), st.integers(0, 10_000_000)),
    order_known=st.booleans(),
)


@given(facts_strategy)
def test_score_is_bounded_and_levels_follow_it(facts: RiskFacts) -> None:
    assessment = score(facts)
    assert 0.0 <= assessment.score <= 1.0
    expected = (
        "high" if assessment.score >= 0.65 else "medium" if assessment.score >= 0.35 else "low"
    )
    assert assessment.level == expected
    assert assessment.reasons  # always explained


@given(facts_strategy, st.integers(1, 5))
def test_more_disputes_never_lower_the_score(facts: RiskFacts, extra: int) -> None:
    worse = dataclasses.replace(facts, disputes_last_90d=facts.disputes_last_90d + extra)
    assert score(worse).score >= score(facts).score


@given(facts_strategy, st.integers(1, 5))
def test_more_refunds_never_lower_the_score(facts: RiskFacts, extra: int) -> None:
    worse = dataclasses.replace(facts, refunds_last_90d=facts.refunds_last_90d + extra)
    assert score(worse).score >= score(facts).score


@given(facts_strategy)
def test_an_older_account_is_never_riskier(facts: RiskFacts) -> None:
    older = dataclasses.replace(facts, account_age_days=facts.account_age_days + 365)
    assert score(older).score <= score(facts).score
