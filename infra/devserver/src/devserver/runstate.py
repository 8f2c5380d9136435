"""In-memory view of one run (loaded from the store; written through on every change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devserver.util import dumps

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
