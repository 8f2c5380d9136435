"""Run traces (`GET /v2/runs/{id}/trace`), parsed into spans and the steps people think in.

A trace is a span tree under `rootSpan`, each span with `children`; step spans carry `stepId` (a
hash) and `stepOp` (`RUN SLEEP WAIT_FOR_EVENT INVOKE ...`). The real server is the reference
(proto/api/v2/service.proto in inngest/inngest, recorded answers in
tests/fixtures/inngest-rest-recorded/).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import RunStatus, int_or_none
from .times import iso, parse_time


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
            duration_ms=int_or_none(data.get("durationMs")),
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
