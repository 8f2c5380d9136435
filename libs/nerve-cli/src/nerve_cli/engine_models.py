"""What the engine's REST API answers, parsed into typed values (the real Inngest server's shapes).

The real server is the reference (proto/api/v2/service.proto in inngest/inngest, and the recorded
answers in tests/fixtures/inngest-rest-recorded/):

- v2 is camelCase proto-JSON: runs have `id`, `status` (`QUEUED RUNNING COMPLETED FAILED
  CANCELLED`), `app.id`, `function.id` (the function's own SDK id, no app prefix),
  `function.name`, `queuedAt` / `startedAt` / `endedAt` (RFC 3339), `durationMs` (a string: proto
  uint64), `trigger.eventIds`, and `output` only when asked for. Empty values are left out.
- v1 is snake_case: `run_id`, `status` in title case (`Running`, `Completed`, ...),
  `function_id` (the function's internal UUID), `run_started_at`, `ended_at`, `event_id`.
- Traces (`/v2/runs/{id}/trace`) are a span tree under `rootSpan`, each span with `children`;
  step spans carry `stepId` (a hash) and `stepOp` (`RUN SLEEP WAIT_FOR_EVENT INVOKE ...`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


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
        if text == "CANCELED":
            text = "CANCELLED"
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED}
)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (`Z`, offsets, 0-9 fraction digits) as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Go writes up to 9 fraction digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # Go's zero time (`0001-01-01T00:00:00Z`) means "not set".
    return None if moment.year <= 1 else moment


def iso(moment: datetime | None) -> str:
    """A time for people and scripts: ISO 8601 UTC with milliseconds, `""` when unset."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: Any) -> int | None:
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
            duration_ms=_int(data.get("durationMs")),
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
class TraceSpan:
    """One span of a v2 run trace (`TraceSpan` in the proto)."""

    span_id: str
    name: str
    status: RunStatus
    step_id: str | None
    step_op: str | None  # RUN, SLEEP, WAIT_FOR_EVENT, INVOKE, SEND_EVENT, ...
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    output: Any
    children: tuple[TraceSpan, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TraceSpan:
        step_op = data.get("stepOp")
        return cls(
            span_id=str(data.get("id") or ""),
            name=str(data.get("name") or ""),
            status=RunStatus.parse(data.get("status")),
            step_id=str(data["stepId"]) if data.get("stepId") else None,
            step_op=re.sub(r"^TRACE_STEP_OP_", "", str(step_op)) if step_op else None,
            queued_at=parse_time(data.get("queuedAt")),
            started_at=parse_time(data.get("startedAt")),
            ended_at=parse_time(data.get("endedAt")),
            duration_ms=_int(data.get("durationMs")),
            output=data.get("output"),
            children=tuple(
                cls.from_json(child)
                for child in data.get("children") or ()
                if isinstance(child, Mapping)
            ),
        )

    def walk(self) -> list[TraceSpan]:
        """This span and all below it, depth first, in the server's order."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    @property
    def is_step(self) -> bool:
        return bool(self.step_id or self.step_op)

    @property
    def is_attempt(self) -> bool:
        return bool(re.fullmatch(r"Attempt \d+", self.name))


@dataclass(frozen=True)
class StepSpan:
    """A step of a run as people think of it: the spans the trace has for one `stepId`."""

    name: str
    step_id: str
    op: str | None
    status: RunStatus
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    attempts: int
    output: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "step_id": self.step_id,
            "op": self.op,
            "status": self.status.value,
            "queued_at": iso(self.queued_at) or None,
            "started_at": iso(self.started_at) or None,
            "ended_at": iso(self.ended_at) or None,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "output": self.output,
        }


@dataclass(frozen=True)
class RunTrace:
    """`GET /v2/runs/{id}/trace`: the run's root span and the steps below it."""

    run_id: str
    root: TraceSpan | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunTrace:
        root = data.get("rootSpan")
        return cls(
            run_id=str(data.get("runId") or ""),
            root=TraceSpan.from_json(root) if isinstance(root, Mapping) else None,
            raw=data,
        )

    @property
    def spans(self) -> list[TraceSpan]:
        return self.root.walk() if self.root else []

    @property
    def steps(self) -> list[StepSpan]:
        """One entry per step, in the order the run reached them.

        The server can report a step with more than one span (the SDK request and the step
        itself share the `stepId`); those are merged: earliest start, latest end, last status.
        """
        grouped: dict[str, list[TraceSpan]] = {}
        for span in self.spans:
            if span.is_step:
                grouped.setdefault(span.step_id or span.span_id, []).append(span)
        steps: list[StepSpan] = []
        for step_id, spans in grouped.items():
            starts = [s.started_at for s in spans if s.started_at]
            queued = [s.queued_at for s in spans if s.queued_at]
            ends = [s.ended_at for s in spans if s.ended_at]
            durations = [s.duration_ms for s in spans if s.duration_ms is not None]
            outputs = [s.output for s in spans if s.output is not None]
            # A retried step's span holds one `Attempt N` child per try (the server's trace
            # loader); the step's other span for the same stepId may repeat them: count once.
            attempts = max(sum(1 for c in s.children if c.is_attempt) for s in spans)
            steps.append(
                StepSpan(
                    name=spans[0].name,
                    step_id=step_id,
                    op=next((s.step_op for s in spans if s.step_op), None),
                    status=spans[-1].status,
                    queued_at=min(queued) if queued else None,
                    started_at=min(starts) if starts else None,
                    ended_at=max(ends) if ends else None,
                    duration_ms=max(durations) if durations else None,
                    attempts=attempts or 1,
                    output=outputs[-1] if outputs else None,
                )
            )
        return steps

    @property
    def attempts(self) -> list[TraceSpan]:
        """Every `Attempt N` span (retries of a step or of the function body), in order."""
        return [span for span in self.spans if span.is_attempt]


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

    @classmethod
    def from_json(cls, data: Any) -> Page:
        if not isinstance(data, Mapping):
            return cls(False, None, None)
        cursor = data.get("cursor")
        return cls(
            bool(data.get("hasMore")), str(cursor) if cursor else None, _int(data.get("limit"))
        )
