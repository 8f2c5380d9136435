"""Turn REST API JSON into small view rows for the templates (tolerant of field spellings).

The REST shapes are the real Inngest server's: `/v1` FunctionRun (snake_case, title-case status,
`function_id` = internal UUID) and `/v2` runs (camelCase, upper-case status, `function: {id,
name}`, `app: {id}`, `trigger.eventIds`) and traces (`rootSpan.children`, keyed by `stepId`).
Rows use one internal spelling: v1's title-case statuses and the app-prefixed function slug.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REDACTED = "[redacted]"
FINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})


def pick(obj: Mapping[str, Any] | None, *names: str, default: Any = None) -> Any:
    """The first present, non-None value among `names`."""
    if not obj:
        return default
    for name in names:
        value = obj.get(name)
        if value is not None:
            return value
    return default


def to_datetime(value: Any) -> datetime | None:
    """ms epoch, s epoch or RFC 3339 string -> aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else float(value)
        if seconds <= 0:
            return None
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return to_datetime(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.year <= 1:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def fmt_time(value: Any) -> str:
    moment = to_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z" if moment else ""


def fmt_duration(start: Any, end: Any) -> str:
    began, ended = to_datetime(start), to_datetime(end)
    if began is None:
        return ""
    if ended is None:
        ended = datetime.now(tz=UTC)
    ms = max(0, int((ended - began).total_seconds() * 1000))
    if ms < 1000:
        return f"{ms} ms"
    if ms < 120_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60000:.1f} min"


def redact(value: Any, fields: frozenset[str]) -> Any:
    """Replace the values of keys named in `fields` (case-insensitive), at any depth."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in fields else redact(v, fields))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, fields) for v in value]
    return value


def pretty(value: Any, fields: frozenset[str] = frozenset()) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(redact(value, fields), indent=2, sort_keys=True, default=str)


@dataclass
class RunRow:
    run_id: str
    status: str
    function: str
    function_id: str
    app: str
    event_id: str
    started_at: Any
    ended_at: Any
    queued_at: Any
    original_run_id: str | None
    cron: str | None
    output: Any
    error: Any
    raw: Mapping[str, Any]

    @property
    def started(self) -> str:
        return fmt_time(self.started_at or self.queued_at)

    @property
    def duration(self) -> str:
        if self.started_at is None:
            return ""
        return fmt_duration(self.started_at, self.ended_at)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def run_status(value: Any) -> str:
    """v2 `COMPLETED` / v1 `Completed` -> `Completed` (v2 `QUEUED` is v1's `Scheduled`)."""
    text = str(value or "Unknown")
    if text.isupper():
        return "Queued" if text == "QUEUED" else text.capitalize()
    return text


def run_row(run: Mapping[str, Any]) -> RunRow:
    """A v2 run (or a v1 FunctionRun, as `/v1/events/{id}/runs` gives) as a view row."""
    function = run.get("function")
    app = run.get("app")
    app_id = str(pick(app, "id", default="")) if isinstance(app, Mapping) else ""
    trigger = run.get("trigger") if isinstance(run.get("trigger"), Mapping) else {}
    status = run_status(run.get("status"))
    if isinstance(function, Mapping):  # v2
        local_id = str(pick(function, "id", default=""))
        slug = f"{app_id}-{local_id}" if app_id and local_id else local_id
        fn_name = str(pick(function, "name", default=local_id))
        event_ids = pick(trigger, "eventIds", default=[]) or []
        # proto Struct: a non-object return value comes wrapped as {"data": value}
        output = _memo_output(run.get("output"))
        return RunRow(
            run_id=str(pick(run, "id", default="")),
            status=status,
            function=fn_name or slug,
            function_id=slug,
            app=app_id,
            event_id=str(event_ids[0]) if event_ids else "",
            started_at=run.get("startedAt"),
            ended_at=run.get("endedAt"),
            queued_at=run.get("queuedAt"),
            original_run_id=None,  # v2 has no link back to the original run
            cron=pick(trigger, "cronSchedule"),
            output=output,
            error=output if status == "Failed" else None,
            raw=run,
        )
    # v1: function_id is the function's internal UUID (function_names() maps it to a slug)
    return RunRow(
        run_id=str(pick(run, "run_id", default="")),
        status=status,
        function=str(pick(run, "function_id", default="")),
        function_id=str(pick(run, "function_id", default="")),
        app="",
        event_id=str(pick(run, "event_id", default="")),
        started_at=run.get("run_started_at"),
        ended_at=run.get("ended_at"),
        queued_at=None,
        original_run_id=run.get("original_run_id"),
        cron=run.get("cron"),
        output=run.get("output"),
        error=run.get("output") if status == "Failed" else None,
        raw=run,
    )


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
        output=_memo_output(output) if error is None else None,
        error=error,
        attempt_rows=[
            {"attempt": i, "status": run_status(t.get("status")), "error": t.get("output")}
            for i, t in enumerate(tries)
            if t.get("status") == "FAILED"
        ],
    )


def _memo_output(output: Any) -> Any:
    """A non-object output comes wrapped as `{"data": x}` (proto Struct): show x."""
    if isinstance(output, Mapping) and set(output) == {"data"}:
        return output["data"]
    return output


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


def error_parts(error: Any) -> tuple[str, str, str]:
    """(name, message, stack) of an error in any of the serialised spellings."""
    if error is None:
        return "", "", ""
    if isinstance(error, str):
        try:
            error = json.loads(error)
        except ValueError:
            return "Error", error, ""
    if isinstance(error, Mapping):
        inner = error.get("error")
        if isinstance(inner, Mapping):
            error = inner
        return (
            str(pick(error, "name", "type", default="Error")),
            str(pick(error, "message", "msg", default="")),
            str(pick(error, "stack", "stacktrace", default="")),
        )
    return "Error", str(error), ""


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "internal_id": str(pick(event, "internal_id", "internalID", "id", default="")),
        "id": str(pick(event, "id", default="")),
        "name": str(pick(event, "name", default="")),
        "data": event.get("data"),
        "received_at": fmt_time(pick(event, "received_at", "receivedAt", "ts")),
        "received": to_datetime(pick(event, "received_at", "receivedAt", "ts")),
        "ts": pick(event, "ts"),
    }
