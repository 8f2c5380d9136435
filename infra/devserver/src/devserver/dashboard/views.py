"""Turn REST API JSON into small view rows for the templates (tolerant of field spellings).

The REST shapes follow the real Inngest server (`/v1` FunctionRun, `/v2` runs and traces); the
helpers accept the few spellings in use (snake_case and camelCase, ms numbers or RFC 3339
strings) so the pages keep working against either engine.
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


def run_row(run: Mapping[str, Any]) -> RunRow:
    function = pick(run, "function", default=None)
    fn_name = pick(run, "function_name", "functionName", default=None)
    fn_slug = pick(run, "function_slug", "functionSlug", "function_id", "functionID", default="")
    if isinstance(function, Mapping):
        fn_name = fn_name or pick(function, "name", "slug")
        fn_slug = pick(function, "slug", "id", default=fn_slug)
    app = pick(run, "app_id", "app_name", "appID", "app", default="")
    if isinstance(app, Mapping):
        app = pick(app, "name", "id", "external_id", default="")
    return RunRow(
        run_id=str(pick(run, "run_id", "id", "runID", default="")),
        status=str(pick(run, "status", default="Unknown")),
        function=str(fn_name or fn_slug),
        function_id=str(fn_slug),
        app=str(app),
        event_id=str(pick(run, "event_id", "eventID", "trigger_id", default="")),
        started_at=pick(run, "run_started_at", "started_at", "startedAt"),
        ended_at=pick(run, "ended_at", "endedAt"),
        queued_at=pick(run, "queued_at", "queuedAt"),
        original_run_id=pick(run, "original_run_id", "originalRunID"),
        cron=pick(run, "cron"),
        output=run.get("output"),
        error=pick(run, "error"),
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


_STEP_CHILD_KEYS = ("children", "childrenSpans", "child_spans", "spans", "steps")


def _flatten_spans(node: Any) -> list[Mapping[str, Any]]:
    """Depth-first list of every span below `node` (the root run span is excluded)."""
    spans: list[Mapping[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            if isinstance(item, Mapping):
                spans.append(item)
                spans.extend(_flatten_spans(_children(item)))
        return spans
    if isinstance(node, Mapping):
        return _flatten_spans(_children(node))
    return spans


def _children(span: Mapping[str, Any]) -> list[Any]:
    for key in _STEP_CHILD_KEYS:
        value = span.get(key)
        if isinstance(value, list):
            return value
    return []


def _error_of(span: Mapping[str, Any]) -> Any:
    error = pick(span, "error")
    if error is None:
        outputs = span.get("output")
        if isinstance(outputs, Mapping) and "error" in outputs and outputs.get("error"):
            error = outputs.get("error")
    return error


def _group_attempts(attempts: Any) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for attempt in attempts or []:
        if isinstance(attempt, Mapping):
            key = str(pick(attempt, "step_id", "stepID", "hash", default=""))
            grouped.setdefault(key, []).append(dict(attempt))
    return grouped


def _span_row(span: Mapping[str, Any], attempt_rows: list[dict[str, Any]]) -> StepRow:
    attempts = pick(span, "attempts", "attempt_count", default=None)
    if not isinstance(attempts, int):
        attempts = len(attempt_rows) or (1 if pick(span, "started_at", "startedAt") else 0)
    wait = span.get("wait") if isinstance(span.get("wait"), Mapping) else {}
    if not wait and isinstance(span.get("stepInfo"), Mapping):  # Inngest's trace spelling
        wait = {
            "event": span["stepInfo"].get("eventName"),
            "expression": span["stepInfo"].get("expression"),
            "timeout_at": span["stepInfo"].get("timeout"),
        }
    sleep = span.get("sleep") if isinstance(span.get("sleep"), Mapping) else {}
    return StepRow(
        name=str(pick(span, "name", "step_name", "stepName", "display_name", default="")),
        step_id=str(pick(span, "step_id", "stepID", "hash", "id", default="")),
        op=str(pick(span, "op", "step_op", "stepOp", default="")),
        status=str(pick(span, "status", default="")),
        attempts=int(attempts),
        started_at=pick(span, "started_at", "startedAt", "queued_at"),
        ended_at=pick(span, "ended_at", "endedAt"),
        output=pick(span, "output", "result"),
        error=_error_of(span),
        wake_at=pick(span, "wake_at", "until", "sleep_until", default=None)
        or pick(sleep, "until", "wake_at"),
        event_name=pick(span, "event", "event_name", "wait_event", default=None)
        or pick(wait, "event", "event_name"),
        expression=pick(span, "expression", "if", default=None) or pick(wait, "expression", "if"),
        timeout_at=pick(span, "timeout_at", "expires_at", default=None)
        or pick(wait, "timeout_at", "expires_at", "timeout"),
        attempt_rows=attempt_rows,
    )


def _memo_output(output: Any) -> Any:
    """A step memo `{"data": x}` shows as x; errors stay as they are."""
    if isinstance(output, Mapping) and set(output) == {"data"}:
        return output["data"]
    return output


def step_rows(
    trace: Any, *, jobs: Sequence[Mapping[str, Any]] | None = None, run_final: bool = False
) -> list[StepRow]:
    """Steps of a `/v2/runs/{id}/trace` answer, in timeline order.

    Understands the devserver's `{"run", "steps", "attempts", "pending"?}` shape (memoized steps,
    every attempt, steps not finished yet) and a nested span tree (`children`). Queued jobs of the
    run (`/v1/runs/{id}/jobs`) fill in sleeps (wake time) and wait timeouts the trace lacks.
    """
    rows: list[StepRow] = []
    if isinstance(trace, Mapping) and isinstance(trace.get("steps"), list):
        by_step = _group_attempts(trace.get("attempts"))
        seen: set[str] = set()
        for span in trace["steps"]:
            if not isinstance(span, Mapping):
                continue
            row = _span_row(span, by_step.get(str(pick(span, "step_id", "hash", default="")), []))
            row.output = _memo_output(row.output)
            if isinstance(row.output, Mapping) and row.output.get("error") and not row.error:
                row.error = row.output["error"]
            rows.append(row)
            seen.add(row.step_id)
        for span in trace.get("pending") or []:
            if isinstance(span, Mapping):
                row = _span_row(span, by_step.get(str(pick(span, "step_id", default="")), []))
                rows.append(row)
                seen.add(row.step_id)
        for step_id, tries in by_step.items():
            if not step_id or step_id in seen:
                continue
            last = tries[-1]
            row = _span_row(last, tries)
            row.attempts = len(tries)
            row.started_at = pick(tries[0], "started_at")
            failed = str(last.get("status")) == "Failed"
            row.status = ("Failed" if run_final else "Retrying") if failed else row.status
            row.error = _error_of(last)
            rows.append(row)
            seen.add(step_id)
    else:
        for span in _flatten_spans(trace):
            if pick(span, "kind", "type") in ("attempt", "execution"):
                continue
            attempt_children = [
                dict(c)
                for c in _children(span)
                if isinstance(c, Mapping) and pick(c, "kind", "type") in ("attempt", "execution")
            ]
            rows.append(_span_row(span, attempt_children))
    known = {r.step_id for r in rows}
    for job in jobs or []:
        kind = str(job.get("kind", ""))
        step_id = str(pick(job, "step_id", default=""))
        at = pick(job, "at", "run_at")
        if kind == "sleep" and step_id not in known:
            rows.append(
                StepRow(step_id, step_id, "Sleep", "Sleeping", 0, None, None, None, None, at)
            )
        elif kind in ("timeout", "pause_timeout"):
            match = next((r for r in rows if r.step_id == step_id), None)
            if match is None:
                match = StepRow(
                    step_id, step_id, "WaitForEvent", "Waiting", 0, None, None, None, None
                )
                rows.append(match)
            match.timeout_at = match.timeout_at or at
        known.add(step_id)
    return rows


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
