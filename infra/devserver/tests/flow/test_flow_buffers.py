"""Debounce and batching state machines, driven with explicit time."""

from __future__ import annotations

from typing import Any

from devserver.flow.buffers import BatchState, DebounceState, append_to_batch, debounce


def event(n: int, ts: int | None = None) -> dict[str, Any]:
    return {"name": "a/b", "id": f"e{n}", "_internal_id": f"i{n}", "ts": ts or n, "data": {"n": n}}


def test_debounce_last_event_wins_and_the_timer_moves() -> None:
    state = debounce(None, event(1), 0, period_ms=2000, timeout_ms=None)
    assert state is not None and state.fire_at_ms == 2000
    state = debounce(state, event(2), 1500, period_ms=2000, timeout_ms=None)
    assert state is not None
    assert state.event["data"]["n"] == 2
    assert (state.first_ms, state.fire_at_ms) == (0, 3500)


def test_debounce_timeout_caps_the_delay_under_a_constant_stream() -> None:
    state: DebounceState | None = None
    fired: list[tuple[int, int]] = []  # (fire time, event number)
    for index, now in enumerate(range(0, 10_000, 500)):
        if state is not None and state.fire_at_ms <= now:  # the timer fires first
            fired.append((state.fire_at_ms, state.event["data"]["n"]))
            state = None
        state = debounce(state, event(index + 1), now, period_ms=2000, timeout_ms=4000)
    # a new event every 500 ms never lets the 2 s period elapse: the 4 s timeout fires it,
    # with the last event received before the fire time; the next event opens a new debounce
    assert fired == [(4000, 8), (8000, 16)]


def test_debounce_ignores_an_older_event() -> None:
    state = debounce(None, event(5, ts=5000), 0, period_ms=2000, timeout_ms=None)
    assert debounce(state, event(4, ts=4000), 100, period_ms=2000, timeout_ms=None) is None


def test_debounce_state_round_trips_json() -> None:
    state = DebounceState(event(1), 10, 20)
    assert DebounceState.from_json(state.to_json()) == state


def test_batch_fills_to_max_size_then_flushes() -> None:
    state = None
    flushed = []
    for n in range(1, 8):
        decision = append_to_batch(state, event(n), n, max_size=3, new_batch_id=f"b{n}")
        state = decision.state
        if decision.flush:
            flushed.append((decision.flush_id, [e["data"]["n"] for e in decision.flush]))
    assert flushed == [("b1", [1, 2, 3]), ("b4", [4, 5, 6])]
    assert state is not None and [e["data"]["n"] for e in state.events] == [7]
    assert state.batch_id == "b7"


def test_batch_reports_when_it_opened_and_never_appends_an_event_twice() -> None:
    first = append_to_batch(None, event(1), 0, max_size=5, new_batch_id="b")
    assert first.opened and first.flush is None
    again = append_to_batch(first.state, event(1), 5, max_size=5, new_batch_id="x")
    assert not again.opened
    assert again.state is not None and len(again.state.events) == 1
    assert BatchState.from_json(again.state.to_json()) == again.state


def test_batch_flushes_early_past_its_byte_budget() -> None:
    # one event is ~65 bytes of JSON: a 100-byte budget flushes at the second
    first = append_to_batch(None, event(1), 0, max_size=100, new_batch_id="b", max_bytes=100)
    assert first.flush is None and first.state is not None
    second = append_to_batch(
        first.state, event(2), 1, max_size=100, new_batch_id="x", max_bytes=100
    )
    assert second.flush is not None and [e["data"]["n"] for e in second.flush] == [1, 2]
