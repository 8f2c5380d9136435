"""Turn REST API JSON into small view rows for the templates (tolerant of field spellings).

The REST shapes are the real Inngest server's: `/v1` FunctionRun (snake_case, title-case status,
`function_id` = internal UUID) and `/v2` runs (camelCase, upper-case status, `function: {id,
name}`, `app: {id}`, `trigger.eventIds`) and traces (`rootSpan.children`, keyed by `stepId`).
Rows use one internal spelling: v1's title-case statuses and the app-prefixed function slug.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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
        output = memo_output(run.get("output"))
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


def memo_output(output: Any) -> Any:
    """A non-object output comes wrapped as `{"data": x}` (proto Struct): show x."""
    if isinstance(output, Mapping) and set(output) == {"data"}:
        return output["data"]
    return output


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
