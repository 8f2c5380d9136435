"""In-memory view of one run (loaded from the DB; written through on every change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Row

from devserver.util import dumps, loads

TERMINAL = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})


@dataclass(eq=False)
class RunState:
    run_id: str
    function_slug: str
    function_uuid: str
    app_name: str
    events: list[dict[str, Any]]
    event_id: str
    status: str
    queued_at: int
    started_at: int | None = None
    ended_at: int | None = None
    output: Any = None
    error: Any = None
    original_run_id: str | None = None
    cron: str | None = None
    batch_id: str | None = None
    run_keys: dict[str, Any] = field(default_factory=dict)
    priority_ms: int = 0
    reason: str | None = None
    pending: set[str] = field(default_factory=set)
    force_plan: bool = False
    memos: dict[str, Any] = field(default_factory=dict)
    saved_state: str = ""  # the `state` column as last written (skip no-op updates)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def state_json(self) -> str:
        return dumps({"pending": sorted(self.pending), "force_plan": self.force_plan})

    def _mark_saved(self) -> str:
        self.saved_state = self.state_json()
        return self.saved_state

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "function_slug": self.function_slug,
            "function_uuid": self.function_uuid,
            "app_name": self.app_name,
            "event_id": self.event_id,
            "events": dumps(self.events),
            "status": self.status,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "output": None if self.output is None else dumps(self.output),
            "error": None if self.error is None else dumps(self.error),
            "original_run_id": self.original_run_id,
            "cron": self.cron,
            "batch_id": self.batch_id,
            "state": self._mark_saved(),
            "run_keys": dumps(self.run_keys),
            "priority_ms": self.priority_ms,
            "reason": self.reason,
        }

    @classmethod
    def from_row(cls, row: Row[Any]) -> RunState:
        m = row._mapping
        state = loads(m["state"]) or {}
        return cls(
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
