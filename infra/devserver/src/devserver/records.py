"""What the store hands out and takes in besides RunState and Job, and how runs map to rows.

Plain values: JSON columns are already decoded, so nothing outside the store parses storage text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devserver.runstate import RunState
from devserver.util import dumps, loads


@dataclass(frozen=True)
class Pause:
    """A run waiting for an event: wait_for_event (`wait`), an invoked run's end (`invoke`) or a
    cancel_on listener (`cancel`, no step)."""

    pause_id: str
    run_id: str
    kind: str
    event_name: str
    expression: str | None
    step_hash: str
    step_name: str
    correlation_id: str | None
    expires_at: int
    timeout_job_id: str | None
    created_at: int


@dataclass(frozen=True)
class StepRecord:
    """A settled step: its memo (`{"data"}`, `{"error"}` or null) in the order it settled."""

    hash: str
    step_id: str
    op: str
    memo: Any
    created_at: int


@dataclass(frozen=True)
class Attempt:
    """One SDK call (or provider call) for a step, or for the run itself (empty step_hash)."""

    id: str
    run_id: str
    job_kind: str
    step_hash: str
    step_name: str
    op: str
    attempt: int
    started_at: int
    ended_at: int
    status: str
    error: Any = None
    output: Any = None


@dataclass(frozen=True)
class StoredEvent:
    """An accepted event: `event` is its public form (id, name, data, user, ts, v)."""

    internal_id: str
    received_at: int
    event: dict[str, Any]


@dataclass(frozen=True)
class StoredFunction:
    slug: str
    uuid: str
    app_name: str
    config: dict[str, Any]
    archived: bool


@dataclass(frozen=True)
class Cancellation:
    """A bulk cancellation (`POST /v1/cancellations`) and how many runs it cancelled."""

    id: str
    app_name: str
    function_slug: str
    started_after: int | None
    started_before: int
    expression: str | None
    cancelled: int
    created_at: int


@dataclass(frozen=True)
class Timer:
    key: str
    at_ms: int
    payload: dict[str, Any]


def run_row(run: RunState) -> dict[str, Any]:
    """The `runs` row of a new run (its scheduling state counts as saved from now on)."""
    run.saved_state = run.state_json()
    return {
        "run_id": run.run_id,
        "function_slug": run.function_slug,
        "function_uuid": run.function_uuid,
        "app_name": run.app_name,
        "event_id": run.event_id,
        "events": dumps(run.events),
        "status": run.status,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "output": None if run.output is None else dumps(run.output),
        "error": None if run.error is None else dumps(run.error),
        "original_run_id": run.original_run_id,
        "cron": run.cron,
        "batch_id": run.batch_id,
        "state": run.saved_state,
        "run_keys": dumps(run.run_keys),
        "priority_ms": run.priority_ms,
        "reason": run.reason,
    }


def run_from_row(m: Mapping[Any, Any]) -> RunState:
    """A RunState from a `runs` row (memos are loaded separately)."""
    state = loads(m["state"]) or {}
    return RunState(
        run_id=m["run_id"],
        function_slug=m["function_slug"],
        function_uuid=m["function_uuid"],
        app_name=m["app_name"],
        events=loads(m["events"]),
        event_id=m["event_id"],
        status=m["status"],
        queued_at=m["queued_at"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        output=loads(m["output"]),
        error=loads(m["error"]),
        original_run_id=m["original_run_id"],
        cron=m["cron"],
        batch_id=m["batch_id"],
        run_keys=loads(m["run_keys"]) or {},
        priority_ms=m["priority_ms"] or 0,
        reason=m["reason"],
        pending=set(state.get("pending", [])),
        force_plan=bool(state.get("force_plan", False)),
        saved_state=m["state"],
    )
