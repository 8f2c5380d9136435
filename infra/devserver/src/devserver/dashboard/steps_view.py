"""A run's steps as timeline rows: the `/v2/runs/{id}/trace` span tree, one row per step.

Spans are the real server's (`rootSpan.children`, keyed by `stepId`, `Attempt N` children per
try); queued jobs (`/v1/runs/{id}/jobs`) and the devserver's open pauses add what the trace does
not carry: sleep wake-up times, awaited events, expressions and timeouts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devserver.dashboard.views import fmt_duration, fmt_time, memo_output, pick, run_status


@dataclass
class StepRow:
    """One step (or function-level span) of a run timeline."""

    name: str
    step_id: str
    op: str
    status: str
    attempts: int
    started_at: Any
    ended_at: Any
    output: Any
    error: Any
    wake_at: Any = None
    event_name: str | None = None
    expression: str | None = None
    timeout_at: Any = None
    attempt_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started(self) -> str:
        return fmt_time(self.started_at)

    @property
    def duration(self) -> str:
        return fmt_duration(self.started_at, self.ended_at) if self.started_at else ""

    @property
    def waiting_label(self) -> str:
        return "Sleeping" if self.wake_at and not self.event_name else "Waiting"


# v2 trace span values -> the page's spellings.
STEP_OPS = {
    "RUN": "Step",
    "SLEEP": "Sleep",
    "WAIT_FOR_EVENT": "WaitForEvent",
    "INVOKE": "InvokeFunction",
    "SEND_EVENT": "SendEvent",
    "AI_GATEWAY": "AIGateway",
    "WAIT_FOR_SIGNAL": "WaitForSignal",
}


def _step_spans(node: Any) -> list[Mapping[str, Any]]:
    """Every span with a `stepId` below `node`, depth first (attempt spans stay inside)."""
    spans: list[Mapping[str, Any]] = []
    for child in (node.get("children") or []) if isinstance(node, Mapping) else []:
        if isinstance(child, Mapping):
            if child.get("stepId"):
                spans.append(child)
            else:
                spans.extend(_step_spans(child))
    return spans


def _attempt_spans(span: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        c
        for c in span.get("children") or []
        if isinstance(c, Mapping) and str(c.get("name", "")).startswith("Attempt")
    ]


def _span_row(span: Mapping[str, Any], run_final: bool) -> StepRow:
    tries = _attempt_spans(span)
    status = str(span.get("status") or "")
    failed_try = bool(tries) and tries[-1].get("status") == "FAILED"
    if status == "WAITING":
        shown = "Sleeping" if span.get("stepOp") == "SLEEP" else "Waiting"
    elif status == "RUNNING" and failed_try:
        shown = "Failed" if run_final else "Retrying"
    else:
        shown = run_status(status) if status else ""
    output = span.get("output")
    error = None
    if failed_try:
        error = tries[-1].get("output", output)
    elif shown == "Failed":
        error = output
    return StepRow(
        name=str(span.get("name") or span.get("stepId") or ""),
        step_id=str(span.get("stepId") or ""),
        op=STEP_OPS.get(str(span.get("stepOp") or ""), str(span.get("stepOp") or "")),
        status=shown,
        attempts=len(tries) or (1 if span.get("startedAt") else 0),
        started_at=span.get("startedAt") or span.get("queuedAt"),
        ended_at=span.get("endedAt"),
        output=memo_output(output) if error is None else None,
        error=error,
        attempt_rows=[
            {"attempt": i, "status": run_status(t.get("status")), "error": t.get("output")}
            for i, t in enumerate(tries)
            if t.get("status") == "FAILED"
        ],
    )


def _child(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _job_step_id(job: Mapping[str, Any]) -> str:
    """The step a queued job is for: the real queue item keeps it as the outgoing edge."""
    edge = _child(_child(_child(_child(job, "Raw"), "data"), "payload"), "edge")
    return str(edge.get("outgoing") or job.get("step_id") or "")


def step_rows(
    trace: Any,
    *,
    jobs: Sequence[Mapping[str, Any]] | None = None,
    run_final: bool = False,
    pending: Sequence[Mapping[str, Any]] | None = None,
) -> list[StepRow]:
    """Steps of a `/v2/runs/{id}/trace` answer, in timeline order, one row per step.

    The real server lists a step more than once (discovery and execution spans): the last span
    of a step wins. `pending` (the devserver's open pauses, engine_extras) adds the awaited
    event, expression and timeout of waits; queued jobs of the run (`/v1/runs/{id}/jobs`) add
    sleep wake-up times and wait timeouts, which the trace does not carry.
    """
    root = trace.get("rootSpan") if isinstance(trace, Mapping) else None
    if pending is None and isinstance(trace, Mapping):
        pending = trace.get("pending")  # engine_extras.with_pending
    rows: dict[str, StepRow] = {}
    for span in _step_spans(root):
        row = _span_row(span, run_final)
        earlier = rows.get(row.step_id)
        if earlier is not None:
            row.attempts = max(row.attempts, earlier.attempts)
            row.started_at = earlier.started_at or row.started_at
        rows[row.step_id] = row
    for item in pending or []:
        step_id = str(item.get("step_id") or "")
        match = rows.get(step_id)
        if match is None:
            match = StepRow(
                str(item.get("name") or step_id),
                step_id,
                str(item.get("op") or ""),
                str(item.get("status") or "Waiting"),
                0,
                None,
                None,
                None,
                None,
            )
            rows[step_id] = match
        match.wake_at = match.wake_at or item.get("wake_at")
        match.event_name = match.event_name or item.get("event")
        match.expression = match.expression or item.get("expression")
        match.timeout_at = match.timeout_at or item.get("timeout_at")
    for job in jobs or []:
        kind = str(job.get("kind", ""))
        step_id = _job_step_id(job)
        at = pick(job, "at", "run_at")
        match = rows.get(step_id)
        if kind == "sleep":
            if match is None:
                match = StepRow(step_id, step_id, "Sleep", "Sleeping", 0, None, None, None, None)
                rows[step_id] = match
            match.wake_at = match.wake_at or at
        elif kind in ("timeout", "pause_timeout"):
            if match is None:
                match = StepRow(
                    step_id, step_id, "WaitForEvent", "Waiting", 0, None, None, None, None
                )
                rows[step_id] = match
            match.timeout_at = match.timeout_at or at
    return list(rows.values())
