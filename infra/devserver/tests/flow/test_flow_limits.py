"""GCRA (throttle / rate limit), concurrency counters and key derivation, with explicit time."""

from __future__ import annotations

from typing import Any

from devserver.flow.config import ConcurrencyLimit
from devserver.flow.keys import (
    batch_applies,
    batch_key,
    concurrency_key,
    debounce_key,
    limited_key,
    priority_factor_s,
    throttle_key,
)
from devserver.flow.limits import (
    ConcurrencyCounters,
    gcra,
    rate_limit_burst,
    throttle_burst,
)
from hypothesis import given
from hypothesis import strategies as st


def admitted_at(times_ms: list[float], *, period_ms: float, limit: int, burst: int) -> list[float]:
    """Requests that arrive at `times_ms` and queue until GCRA admits them (throttle)."""
    tat: float | None = None
    starts = []
    for arrival in times_ms:
        now = arrival
        while True:
            decision = gcra(tat, now, period_ms=period_ms, limit=limit, burst=burst)
            if decision.allowed:
                tat = decision.tat_ms
                starts.append(now)
                break
            now = decision.retry_at_ms
    return starts


def test_throttle_admits_limit_plus_burst_then_one_per_emission_interval() -> None:
    # limit 3 per 3 s, burst 1 (the Python default): 4 at once, then one per second
    starts = admitted_at([0.0] * 8, period_ms=3000, limit=3, burst=throttle_burst(3, 1))
    assert starts == [0, 0, 0, 0, 1000, 2000, 3000, 4000]


def test_throttle_refills_after_idle() -> None:
    burst = throttle_burst(2, 1)
    starts = admitted_at([0, 0, 0, 0, 10_000, 10_000, 10_000], period_ms=2000, limit=2, burst=burst)
    assert starts == [0, 0, 0, 1000, 10_000, 10_000, 10_000]


def test_rate_limit_burst_is_a_tenth_of_the_limit() -> None:
    assert rate_limit_burst(1) == 0
    assert rate_limit_burst(10) == 1
    assert rate_limit_burst(25) == 2


def dropped(times_ms: list[float], *, period_ms: float, limit: int) -> list[bool]:
    tat: float | None = None
    result = []
    for now in times_ms:
        decision = gcra(tat, now, period_ms=period_ms, limit=limit, burst=rate_limit_burst(limit))
        if decision.allowed:
            tat = decision.tat_ms
        result.append(not decision.allowed)
    return result


def test_rate_limit_drops_the_excess() -> None:
    # limit 2 per 2 s: burst 0 -> one per second; a burst of 5 keeps only the first
    assert dropped([0, 0, 0, 0, 0], period_ms=2000, limit=2) == [False, True, True, True, True]
    # limit 10 per 10 s: burst 1 -> two back to back, then one per second
    assert dropped([0, 0, 0, 1000, 1500, 2000], period_ms=10_000, limit=10) == [
        False,
        False,
        True,
        False,
        True,
        False,
    ]


def test_idempotency_allows_one_per_24h() -> None:
    day = 86_400_000
    assert dropped([0, 1, day - 1, day + 1], period_ms=day, limit=1) == [False, True, True, False]


@given(
    limit=st.integers(1, 20),
    burst=st.integers(1, 5),
    period_s=st.integers(1, 60),
    count=st.integers(1, 60),
)
def test_throttle_never_exceeds_gcra_budget(
    limit: int, burst: int, period_s: int, count: int
) -> None:
    period = period_s * 1000.0
    starts = admitted_at(
        [0.0] * count, period_ms=period, limit=limit, burst=throttle_burst(limit, burst)
    )
    emission = period / limit
    assert len(starts) == count
    for index, start in enumerate(starts):
        # the i-th start happens no earlier than its GCRA slot and within one interval of it
        earliest = max(0.0, (index - (limit + burst) + 1) * emission)
        assert earliest - 1e-6 <= start <= earliest + emission


def test_concurrency_counters_fit_every_limit() -> None:
    counters = ConcurrencyCounters()
    fn_limit, key_a, key_b = ("fn:fn", 3), ("f:fn:a", 2), ("f:fn:b", 2)
    assert counters.fits([fn_limit, key_a])
    counters.take("j1", [fn_limit, key_a])
    counters.take("j2", [fn_limit, key_a])
    assert not counters.fits([fn_limit, key_a])  # per-key limit reached
    assert counters.fits([fn_limit, key_b])
    counters.take("j3", [fn_limit, key_b])
    assert not counters.fits([fn_limit, key_b])  # function-wide limit reached
    assert counters.release("j1")
    assert not counters.release("j1")  # double release is harmless
    assert counters.fits([fn_limit, key_a])
    assert counters.count("fn:fn") == 2
    assert counters.fits([("f:fn:x", 0)])  # 0 = unlimited


EVENT: dict[str, Any] = {"name": "a/b", "data": {"customer": "c1", "tier": "pro", "n": 3, "p": 7}}


def test_concurrency_keys_by_scope() -> None:
    keyed = ConcurrencyLimit(limit=2, key="event.data.customer", scope="fn")
    assert concurrency_key(keyed, EVENT, function_slug="app-fn") == "f:app-fn:c1"
    shared = ConcurrencyLimit(limit=2, key="event.data.customer", scope="account")
    # account/env scope: the same key from another function is the same counter
    assert concurrency_key(shared, EVENT, function_slug="app-a") == concurrency_key(
        shared, EVENT, function_slug="app-b"
    )
    # a missing field evaluates to false: every such run shares the "false" group
    missing = ConcurrencyLimit(limit=2, key="event.data.nope", scope="fn")
    assert concurrency_key(missing, EVENT, function_slug="f") == "f:f:false"
    numeric = ConcurrencyLimit(limit=2, key="event.data.n", scope="fn")
    assert concurrency_key(numeric, EVENT, function_slug="f") == "f:f:3"
    # the function-wide limit is a different counter from a key that evaluates to ""
    empty = ConcurrencyLimit(limit=2, key="''", scope="fn")
    unkeyed = ConcurrencyLimit(limit=10)
    assert concurrency_key(empty, EVENT, function_slug="f") != concurrency_key(
        unkeyed, EVENT, function_slug="f"
    )


def test_rate_limit_and_singleton_keys_skip_false() -> None:
    assert limited_key("event.data.customer", EVENT, function_slug="f") == "f-c1"
    assert limited_key("event.data.missing", EVENT, function_slug="f") is None
    assert limited_key(None, EVENT, function_slug="f") == "f"
    assert throttle_key("event.data.missing", EVENT, function_slug="f") == "f-false"


def test_debounce_and_batch_keys() -> None:
    assert debounce_key(None, EVENT, function_slug="f") == "f"
    assert debounce_key("event.data.customer", EVENT, function_slug="f") == "f-c1"
    assert batch_key(None, EVENT, function_slug="f") == "f-default"
    assert batch_applies("event.data.tier == 'pro'", EVENT)
    assert not batch_applies("event.data.tier == 'free'", EVENT)
    assert not batch_applies("event.data.missing.x > 1", EVENT)


def test_priority_must_be_an_int_and_is_clamped() -> None:
    assert priority_factor_s("event.data.tier == 'pro' ? 120 : 0", EVENT) == 120
    assert priority_factor_s("event.data.p", EVENT) == 0  # JSON number = double -> 0
    assert priority_factor_s("int(event.data.p)", EVENT) == 7
    assert priority_factor_s("100000", EVENT) == 43_200
    assert priority_factor_s("-100000", EVENT) == -43_200
    assert priority_factor_s("event.data.missing", EVENT) == 0
    assert priority_factor_s(None, EVENT) == 0
