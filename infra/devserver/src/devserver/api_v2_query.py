"""Run listing for /v2 (`/runs`, `/events/{id}/runs`, `/apps/{app}/functions/{fn}/runs`):
query parameters (snake_case or camelCase, repeatable filters, RFC 3339 times), validation with
the real server's error messages, keyset paging with an opaque base64 cursor."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from devserver.engine import Engine
from devserver.store import RunFilter
from devserver.views import V2_STATUS_FILTER, v2_error, v2_list, v2_run, waiting_reason

DEFAULT_LIMIT = 20
TIME_FIELDS = {
    "": "queued_at",
    "QUEUEDAT": "queued_at",
    "QUEUED_AT": "queued_at",
    "STARTEDAT": "started_at",
    "STARTED_AT": "started_at",
    "ENDEDAT": "ended_at",
    "ENDED_AT": "ended_at",
}


@dataclass
class RunQuery:
    limit: int = DEFAULT_LIMIT
    statuses: list[str] = field(default_factory=list)
    app_ids: list[str] = field(default_factory=list)
    function_ids: list[str] = field(default_factory=list)
    event_id: str | None = None
    from_ms: int | None = None
    until_ms: int | None = None
    time_range: dict[str, str] | None = None
    time_column: str = "queued_at"
    ascending: bool = False
    include_output: bool = False
    cursor: dict[str, Any] | None = None


def params(request: Request, *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        values.extend(request.query_params.getlist(name))
    return values


def param(request: Request, *names: str) -> str | None:
    found = params(request, *names)
    return found[0] if found else None


def bool_param(request: Request, *names: str) -> bool:
    return (param(request, *names) or "").lower() in ("true", "1")


def limit_param(request: Request, *, max_limit: int) -> int | JSONResponse:
    raw = param(request, "limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        return v2_error(
            400,
            "api_error",
            f'parsing field "limit": strconv.ParseInt: parsing "{raw}": invalid syntax',
        )
    if limit > max_limit:
        return v2_error(400, "invalid_field_format", f"Limit cannot exceed {max_limit}")
    return limit if limit > 0 else DEFAULT_LIMIT


def _parse_time(name: str, raw: str) -> int | JSONResponse:
    try:
        if "T" not in raw:
            raise ValueError("not RFC 3339")
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("no time zone")
    except ValueError:
        return v2_error(
            400,
            "api_error",
            f'parsing field "{name}": parsing time "{raw}" as '
            f'"2006-01-02T15:04:05.999999999Z07:00": cannot parse "{raw}"',
        )
    return int(moment.timestamp() * 1000)


def encode_cursor(value: int | None, run_id: str) -> str:
    return base64.b64encode(json.dumps({"id": run_id, "v": value}).encode()).decode()


def decode_cursor(raw: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True))
    except (ValueError, TypeError):
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("id"), str):
        return None
    return decoded


def parse_run_query(request: Request, *, max_limit: int) -> RunQuery | JSONResponse:
    limit = limit_param(request, max_limit=max_limit)
    if isinstance(limit, JSONResponse):
        return limit
    query = RunQuery(limit=limit)
    for raw in params(request, "status"):
        status = V2_STATUS_FILTER.get(raw.upper())
        if status is None:
            return v2_error(400, "invalid_field_format", "Status is invalid")
        query.statuses.append(status)
    query.app_ids = [a for a in params(request, "app_id", "appId") if a]
    query.function_ids = [f for f in params(request, "function_id", "functionId") if f]
    for name in ("from", "until"):
        moment = param(request, name)
        if moment:
            parsed = _parse_time(name, moment)
            if isinstance(parsed, JSONResponse):
                return parsed
            setattr(query, f"{name}_ms", parsed)
    if query.from_ms is not None and query.until_ms is not None:
        if query.from_ms >= query.until_ms:
            return v2_error(400, "invalid_field_format", "from must be before until")
        query.time_range = {
            "from": param(request, "from") or "",
            "until": param(request, "until") or "",
        }
    time_field = (param(request, "time_field", "timeField") or "").upper()
    if time_field not in TIME_FIELDS:
        return v2_error(400, "invalid_field_format", "timeField is invalid")
    query.time_column = TIME_FIELDS[time_field]
    order = (param(request, "order") or "DESC").upper()
    if order not in ("ASC", "DESC"):
        return v2_error(400, "invalid_field_format", "order is invalid")
    query.ascending = order == "ASC"
    query.include_output = bool_param(request, "include_output", "includeOutput")
    cursor = param(request, "cursor")
    if cursor:
        query.cursor = decode_cursor(cursor)
        if query.cursor is None:
            return v2_error(400, "invalid_field_format", "Cursor is invalid")
    return query


def run_filter(query: RunQuery) -> RunFilter:
    """The store query for a page of `query` (one run more than the page: is there a next?)."""
    slugs = None
    if query.function_ids:
        slugs = [f"{app}-{fn}" for app in query.app_ids for fn in query.function_ids]
        # The SDK's function id without the app prefix, as on the real server.
        slugs += [
            fn
            for fn in query.function_ids
            if not any(fn.startswith(a + "-") for a in query.app_ids)
        ]
    cursor = query.cursor
    return RunFilter(
        limit=query.limit + 1,
        # Skipped runs are a devserver extra: the real server creates no run for a skipped event.
        statuses=query.statuses or [s for s in V2_STATUS_FILTER.values() if s != "Skipped"],
        time_column=query.time_column,
        ascending=query.ascending,
        event_id=query.event_id,
        app_names=query.app_ids,
        function_slugs=slugs,
        from_ms=query.from_ms,
        until_ms=query.until_ms,
        after=None if cursor is None else (cursor.get("v"), cursor["id"]),
    )


async def run_page(engine: Engine, query: RunQuery) -> Response:
    found = await engine.store.runs.page(run_filter(query))
    states = found[: query.limit]
    items = []
    for run in states:
        fn = engine.registry.all_functions.get(run.function_slug)
        items.append(
            v2_run(
                run,
                function_name=fn.name if fn else None,
                include_output=query.include_output,
                waiting=waiting_reason(engine, run),
            )
        )
    cursor = None
    if len(found) > query.limit:
        last = states[-1]
        cursor = encode_cursor(getattr(last, query.time_column), last.run_id)
    return JSONResponse(
        v2_list(items, limit=query.limit, cursor=cursor, time_range=query.time_range)
    )
