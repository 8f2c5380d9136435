"""cancel_on listeners (interpolated `if`, timeout) and run timeouts, with explicit time."""

from __future__ import annotations

from typing import Any

from devserver.expressions import compile_expression
from devserver.flow.cancel import cancel_listeners, timeout_deadlines
from devserver.flow.config import DEFAULT_CANCEL_TIMEOUT_MS

TRIGGER: dict[str, Any] = {"name": "app/start", "data": {"id": "a1", "tier": "pro"}}


def config(*entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "app-fn", "cancel": list(entries), **extra}


def test_if_is_interpolated_with_the_triggering_event() -> None:
    [listener] = cancel_listeners(
        config({"event": "app/stop", "if": "async.data.id == event.data.id", "timeout": "10m"}),
        TRIGGER,
        1_000,
    )
    assert listener.event == "app/stop"
    assert listener.expires_at_ms == 1_000 + 600_000
    assert listener.expression == "async.data.id == 'a1'"
    compiled = compile_expression(listener.expression)
    assert compiled.matches({"async": {"data": {"id": "a1"}}})
    assert not compiled.matches({"async": {"data": {"id": "b2"}}})


def test_a_condition_that_reduces_to_false_creates_no_listener() -> None:
    entries = (
        {"event": "app/stop", "if": "event.data.tier == 'free' && async.data.id == event.data.id"},
        {"event": "app/other"},
    )
    listeners = cancel_listeners(config(*entries), TRIGGER, 0)
    assert [(item.event, item.expression) for item in listeners] == [("app/other", None)]
    assert listeners[0].expires_at_ms == DEFAULT_CANCEL_TIMEOUT_MS


def test_timeout_may_be_an_rfc3339_time_and_batches_get_no_listeners() -> None:
    entry = {"event": "app/stop", "timeout": "2030-01-01T00:00:00Z"}
    [listener] = cancel_listeners(config(entry), TRIGGER, 0)
    assert listener.expires_at_ms == 1_893_456_000_000
    assert cancel_listeners(config(entry), TRIGGER, 0, batch=True) == []


def test_timeout_deadlines() -> None:
    conf = {"timeouts": {"start": "30s", "finish": "2h"}}
    assert timeout_deadlines(conf, queued_ms=1_000, started_ms=None) == (31_000, None)
    assert timeout_deadlines(conf, queued_ms=1_000, started_ms=5_000) == (31_000, 7_205_000)
    assert timeout_deadlines({}, queued_ms=0, started_ms=0) == (None, None)


def test_one_default_a_year_of_365_days_as_the_server() -> None:
    assert DEFAULT_CANCEL_TIMEOUT_MS == 365 * 86_400_000  # pkg/consts CancelTimeout
    [listener] = cancel_listeners(config({"event": "app/stop"}), TRIGGER, 5)
    assert listener.expires_at_ms == 5 + 365 * 86_400_000


def test_a_condition_that_cannot_be_interpolated_is_kept_as_written() -> None:
    broken = "async.data.id == event.data.id &&"
    [listener] = cancel_listeners(config({"event": "app/stop", "if": broken}), TRIGGER, 0)
    assert listener.expression == broken  # listens, can never match (as the server)


def test_a_timeout_that_is_neither_duration_nor_time_gets_the_default() -> None:
    [listener] = cancel_listeners(config({"event": "app/stop", "timeout": "soon"}), TRIGGER, 7)
    assert listener.expires_at_ms == 7 + DEFAULT_CANCEL_TIMEOUT_MS


def test_timeouts_that_are_not_durations_mean_no_timeout() -> None:
    conf = {"timeouts": {"start": "later", "finish": "1d"}}
    assert timeout_deadlines(conf, queued_ms=0, started_ms=10) == (None, 10 + 86_400_000)
    assert timeout_deadlines({"timeouts": {"start": 30}}, queued_ms=0, started_ms=None) == (
        30_000,
        None,
    )
