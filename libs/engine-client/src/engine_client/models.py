"""What the engine's REST API answers, parsed into typed values (the real Inngest server's shapes).

The real server is the reference (proto/api/v2/service.proto in inngest/inngest, and the recorded
answers in tests/fixtures/inngest-rest-recorded/):

- v2 is camelCase proto-JSON: runs have `id`, `status` (`QUEUED RUNNING COMPLETED FAILED
  CANCELLED`), `app.id`, `function.id` (the function's own SDK id, no app prefix),
  `function.name`, `queuedAt` / `startedAt` / `endedAt` (RFC 3339), `durationMs` (a string: proto
  uint64), `trigger.eventIds`, and `output` only when asked for. Empty values are left out.
- v1 is snake_case: `run_id`, `status` in title case (`Running`, `Completed`, ...),
  `function_id` (the function's internal UUID), `run_started_at`, `ended_at`, `event_id`.

Traces are in traces.py. Every parsed value keeps the JSON it was read from (`raw`), so a caller
that passes the engine's answer on (the MCP tools) passes it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .times import iso, parse_time


class RunStatus(StrEnum):
    """One status vocabulary for runs and spans, whatever casing the server used."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"  # trace spans only (a run that waits or sleeps is RUNNING)
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> RunStatus:
        """v2 `COMPLETED`, v1 `Completed`, proto `FUNCTION_RUN_STATUS_COMPLETED` -> COMPLETED."""
        text = str(value or "").strip().upper()
        text = re.sub(r"^(FUNCTION_RUN_STATUS_|TRACE_SPAN_STATUS_)", "", text)
        text = _STATUS_ALIASES.get(text, text)
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


# v1 calls a run that has not started `Scheduled`; v2 calls it `QUEUED`.
_STATUS_ALIASES = {"CANCELED": "CANCELLED", "SCHEDULED": "QUEUED"}

TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED}
)


def int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def _ref_id(value: Any) -> str:
    return str(value.get("id") or "") if isinstance(value, Mapping) else ""


@dataclass(frozen=True)
class RunSummary:
    """A run, read from a v2 `FunctionRun` or (where v1 is the only source) a v1 run."""

    run_id: str
    status: RunStatus
    app_id: str  # the SDK app id, e.g. `support-worker` ("" when only v1 answered)
    function_id: str  # the function's own SDK id, e.g. `handle-customer-email` ("" from v1)
    function_name: str
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None = None
    event_ids: tuple[str, ...] = ()
    output: Any = None
    function_internal_id: str | None = None  # v1 names functions by their internal UUID
    original_run_id: str | None = None  # v1 only: the run this one reran
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def function_slug(self) -> str:
        """`app-fn`, the composite slug the SDK registers (v1 `/v1/apps/{app}/functions` ids)."""
        if self.app_id and self.function_id:
            return f"{self.app_id}-{self.function_id}"
        return self.function_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSummary:
        """A v2 `FunctionRun` (`id`, `function`, `app`) or a v1 run (`run_id`, `function_id`)."""
        if "run_id" in data and "id" not in data:
            return cls._from_v1(data)
        function = data.get("function")
        event_ids = data.get("trigger", {}).get("eventIds") if data.get("trigger") else None
        return cls(
            run_id=str(data.get("id") or ""),
            status=RunStatus.parse(data.get("status")),
            app_id=_ref_id(data.get("app"))
            or _ref_id(function.get("app") if isinstance(function, Mapping) else None),
            function_id=_ref_id(function),
            function_name=str(function.get("name") or "") if isinstance(function, Mapping) else "",
            queued_at=parse_time(data.get("queuedAt")),
            started_at=parse_time(data.get("startedAt")),
            ended_at=parse_time(data.get("endedAt")),
            duration_ms=int_or_none(data.get("durationMs")),
            event_ids=tuple(str(i) for i in event_ids or ()),
            output=data.get("output"),
            raw=data,
        )

    @classmethod
    def _from_v1(cls, data: Mapping[str, Any]) -> RunSummary:
        started = parse_time(data.get("run_started_at"))
        ended = parse_time(data.get("ended_at"))
        event_id = data.get("event_id")
        return cls(
            run_id=str(data.get("run_id") or ""),
            status=RunStatus.parse(data.get("status")),
            app_id="",
            function_id="",
            function_name="",
            queued_at=started,
            started_at=started,
            ended_at=ended,
            duration_ms=None,
            event_ids=(str(event_id),) if event_id else (),
            output=data.get("output"),
            function_internal_id=str(data.get("function_id") or "") or None,
            original_run_id=str(data.get("original_run_id") or "") or None,
            raw=data,
        )

    def to_json(self) -> dict[str, Any]:
        """A stable, script-friendly form (what `--json` prints)."""
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "app_id": self.app_id,
            "function_id": self.function_id,
            "function_name": self.function_name,
            "queued_at": iso(self.queued_at) or None,
            "started_at": iso(self.started_at) or None,
            "ended_at": iso(self.ended_at) or None,
            "duration_ms": self.duration_ms,
            "event_ids": list(self.event_ids),
            "output": self.output,
        }


@dataclass(frozen=True)
class FunctionRef:
    """A function as the v2 API names it: SDK app id + the function's own id."""

    app_id: str
    function_id: str

    @property
    def slug(self) -> str:
        return f"{self.app_id}-{self.function_id}"

    def __str__(self) -> str:
        return f"{self.app_id}/{self.function_id}"


@dataclass(frozen=True)
class Invocation:
    """`POST /v2/apps/{app}/functions/{fn}/invoke`: the run it started (or the earlier one)."""

    run_id: str
    reused: bool  # 409: the idempotency key was used before; run_id is the earlier run


@dataclass(frozen=True)
class Page:
    """v2 `page`: `hasMore` and `cursor` are only present when there are more results."""

    has_more: bool
    cursor: str | None
    limit: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Page:
        if not isinstance(data, Mapping):
            return cls(False, None, None)
        cursor = data.get("cursor")
        return cls(
            bool(data.get("hasMore")),
            str(cursor) if cursor else None,
            int_or_none(data.get("limit")),
            raw=data,
        )


@dataclass(frozen=True)
class RunsPage:
    """Runs of a v2 listing up to a limit, and the paging of the last page read."""

    runs: list[RunSummary]
    page: Page


def status_filter(statuses: Sequence[str]) -> list[str]:
    """Run statuses in any spelling -> the v2 filter values, once each, in order.

    A status the client does not know is sent as written (upper case), so the server's error
    names it rather than the client guessing."""
    values: list[str] = []
    for status in statuses:
        parsed = RunStatus.parse(status)
        values.append(str(status).strip().upper() if parsed is RunStatus.UNKNOWN else parsed.value)
    return list(dict.fromkeys(values))
