"""Registration-time validation of flow-control settings
(infra/devserver/docs/sync.md#validation-at-sync)."""

from __future__ import annotations

from typing import Any

import pytest
from devserver.flow.config import (
    IDEMPOTENCY_PERIOD_MS,
    ConcurrencyLimit,
    parse_flow_config,
    validation_error,
)


def fn(**options: Any) -> dict[str, Any]:
    return {
        "id": "app-fn",
        "name": "fn",
        "triggers": [{"event": "app/x"}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "x"}}},
        **options,
    }


FULL = fn(
    concurrency=[
        {"key": "event.data.user", "limit": 2, "scope": "fn"},
        {"limit": 10},
    ],
    throttle={"key": "event.data.u", "limit": 5, "period": "1m", "burst": 1},
    rateLimit={"limit": 10, "period": "1h"},
    debounce={"key": "event.data.k", "period": "90s", "timeout": "10m"},
    priority={"run": "event.data.p"},
    cancel=[{"event": "app/cancel", "if": "async.data.id == event.data.id", "timeout": "1d"}],
    timeouts={"start": "30s", "finish": "2h"},
    singleton={"key": "event.data.s", "mode": "skip"},
)


def test_every_option_the_sdk_emits_parses() -> None:
    assert validation_error(FULL) is None
    flow = parse_flow_config(FULL)
    # the server sorts concurrency limits by increasing limit
    assert flow.concurrency == (
        ConcurrencyLimit(limit=2, key="event.data.user", scope="fn"),
        ConcurrencyLimit(limit=10, key=None, scope="fn"),
    )
    assert flow.throttle is not None and flow.throttle.period_ms == 60_000
    assert flow.rate_limit is not None and flow.rate_limit.period_ms == 3_600_000
    assert flow.debounce is not None
    assert (flow.debounce.period_ms, flow.debounce.timeout_ms) == (90_000, 600_000)
    assert flow.cancel[0].timeout_ms == 86_400_000
    assert (flow.start_timeout_ms, flow.finish_timeout_ms) == (30_000, 7_200_000)
    assert flow.priority_run == "event.data.p"


def test_idempotency_becomes_a_24h_rate_limit_that_replaces_rate_limit() -> None:
    flow = parse_flow_config(
        fn(idempotency="event.data.id", rateLimit={"limit": 5, "period": "1m"})
    )
    assert flow.rate_limit is not None
    assert (flow.rate_limit.limit, flow.rate_limit.period_ms, flow.rate_limit.key) == (
        1,
        IDEMPOTENCY_PERIOD_MS,
        "event.data.id",
    )


def test_plain_function_has_no_flow_control() -> None:
    assert parse_flow_config(fn()).is_plain
    assert parse_flow_config(fn(cancel=[], concurrency=[])).is_plain


BATCH = {"maxSize": 10, "timeout": "5s"}


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"batchEvents": BATCH, "cancel": [{"event": "a/b"}]}, "batch and cancel"),
        ({"batchEvents": BATCH, "debounce": {"period": "5s"}}, "batch and debounce"),
        ({"batchEvents": BATCH, "singleton": {"mode": "skip"}}, "batch and singleton"),
        ({"batchEvents": BATCH, "priority": {"run": "1"}}, "batch and Priority.Run"),
        ({"batchEvents": {"maxSize": 1, "timeout": "5s"}}, "maxSize must be at least 2"),
        ({"debounce": {"period": "500ms"}}, "less than the min of: 1s"),
        ({"debounce": {"period": "8d"}}, "greater than the max of: 168h0m0s"),
        ({"rateLimit": {"limit": 1, "period": "25h"}}, "greater than the max of 24h"),
        (
            {"concurrency": [{"limit": 1}, {"limit": 2, "key": "event.a"}, {"limit": 3}]},
            "allowed max of: 2",
        ),
        ({"concurrency": [{"limit": 1, "scope": "account"}]}, "key must be specified for account"),
        ({"concurrency": [{"limit": 1, "scope": "env"}]}, "key must be specified for env"),
        ({"concurrency": [{"limit": 1, "key": "event.data.("}]}, "Concurrency key"),
        ({"cancel": [{"event": "a/b", "if": "size(async.data.x) > 1"}]}, "function calls are"),
        ({"cancel": [{"event": "a/b", "if": "has(async.data.x)"}]}, "macros are disallowed"),
        ({"cancel": [{"event": f"a/{i}"} for i in range(6)]}, "max number of cancellation"),
        ({"debounce": {"period": "5s", "key": "nope.x"}}, "Debounce expression is invalid"),
        ({"priority": {"run": "event.data.p +"}}, "Priority.Run expression is invalid"),
        ({"throttle": {"limit": 0, "period": "1m"}}, "throttle limit must be at least 1"),
        ({"singleton": {"mode": "queue"}}, "Unknown singleton mode"),
        ({"rateLimit": {"limit": 1, "period": "soon"}}, "not a valid duration"),
    ],
)
def test_refused_like_the_real_server(options: dict[str, Any], problem: str) -> None:
    detail = validation_error(fn(**options))
    assert detail is not None
    assert problem in detail


def test_batching_alone_with_plain_concurrency_is_fine() -> None:
    assert validation_error(fn(batchEvents=BATCH, concurrency=[{"limit": 2}])) is None
    assert validation_error(fn(batchEvents={**BATCH, "key": "event.data.k", "if": "true"})) is None


def test_empty_keys_are_treated_as_absent() -> None:
    flow = parse_flow_config(fn(debounce={"period": "5s", "key": ""}))
    assert flow.debounce is not None and flow.debounce.key is None
