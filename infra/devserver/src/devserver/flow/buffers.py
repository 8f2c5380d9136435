"""Pure state machines for debounce and batching (explicit `now_ms`, JSON-able state).

Debounce (pkg/execution/debounce): per key, the first event opens a debounce firing at
`now + period`; each later event replaces the stored one (last event wins) and pushes the fire
time to `now + period`, capped at `first + timeout` when a timeout is set. An event whose `ts` is
older than the stored event's is ignored (out-of-order protection).

Batching (pkg/execution/batch): per key, the first event opens a batch flushing at
`now + timeout`; reaching `max_size` flushes at once. The same internal event id is never
appended twice. A batch whose events exceed 10 MiB flushes early.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

# pkg/execution/batch: a batch also flushes early once its stored events exceed 10 MiB.
MAX_BATCH_BYTES: Final = 10 * 1024 * 1024


def _event_ts(event: dict[str, Any]) -> float:
    ts = event.get("ts")
    return float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else 0.0


def _event_id(event: dict[str, Any]) -> str:
    return str(event.get("_internal_id") or event.get("id") or "")


@dataclass
class DebounceState:
    event: dict[str, Any]
    first_ms: int
    fire_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "first_ms": self.first_ms, "fire_at_ms": self.fire_at_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DebounceState:
        return cls(data["event"], int(data["first_ms"]), int(data["fire_at_ms"]))


def debounce(
    state: DebounceState | None,
    event: dict[str, Any],
    now_ms: int,
    *,
    period_ms: int,
    timeout_ms: int | None,
) -> DebounceState | None:
    """The new state, or None when the event is ignored (older than the stored one)."""
    if state is None:
        fire_at = now_ms + period_ms
        if timeout_ms is not None:
            fire_at = min(fire_at, now_ms + timeout_ms)
        return DebounceState(event, now_ms, fire_at)
    if _event_ts(event) < _event_ts(state.event):
        return None
    fire_at = now_ms + period_ms
    if timeout_ms is not None:
        fire_at = min(fire_at, state.first_ms + timeout_ms)
    return DebounceState(event, state.first_ms, max(fire_at, now_ms))


@dataclass
class BatchState:
    batch_id: str
    opened_ms: int
    events: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "opened_ms": self.opened_ms,
            "events": self.events,
            "size_bytes": self.size_bytes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchState:
        return cls(
            str(data["batch_id"]),
            int(data["opened_ms"]),
            list(data["events"]),
            int(data.get("size_bytes") or 0),
        )


@dataclass(frozen=True)
class BatchDecision:
    state: BatchState | None  # the open batch after this event (None once flushed)
    flush: list[dict[str, Any]] | None  # events of a batch to run now
    flush_id: str | None
    opened: bool  # a new batch was opened (schedule its timeout)


def append_to_batch(
    state: BatchState | None,
    event: dict[str, Any],
    now_ms: int,
    *,
    max_size: int,
    new_batch_id: str,
    max_bytes: int = MAX_BATCH_BYTES,
) -> BatchDecision:
    opened = state is None
    current = state if state is not None else BatchState(new_batch_id, now_ms)
    if any(_event_id(existing) == _event_id(event) for existing in current.events):
        return BatchDecision(current, None, None, False)
    current.events.append(event)
    current.size_bytes += len(json.dumps(event, separators=(",", ":")).encode())
    if len(current.events) >= max_size or current.size_bytes > max_bytes:
        return BatchDecision(None, current.events, current.batch_id, opened)
    return BatchDecision(current, None, None, opened)
