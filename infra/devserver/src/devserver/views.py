"""JSON shapes of the REST API, in the real Inngest server's dialect.

`/v1` is snake_case Go JSON: `{"data", "metadata": {"fetched_at"}}`, errors
`{"error", "data": null, "status"}`. `/v2` is camelCase proto-JSON: empty and false values are
left out (an empty list has no `data` key, `hasMore` only when true), 64-bit numbers are strings
(`"durationMs": "107"`), errors are `{"errors": [{"code", "message"}]}`.
tests/fixtures/inngest-rest-recorded/ holds the real server's answers these follow.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, PlainTextResponse

from devserver.records import StoredEvent
from devserver.registry import FunctionDef
from devserver.runstate import RunState
from devserver.util import iso_ms, now_ms

ZERO_UUID = "00000000-0000-0000-0000-000000000000"

# Internal (v1) run status -> v2 FunctionRunStatus. "Skipped" is a devserver extra (the real
# server creates no run for a skipped event); v2 shows it only when asked for (status=SKIPPED).
V2_STATUS = {
    "Scheduled": "QUEUED",
    "Running": "RUNNING",
    "Completed": "COMPLETED",
    "Failed": "FAILED",
    "Cancelled": "CANCELLED",
    "Skipped": "SKIPPED",
}
V2_STATUS_FILTER = {
    "QUEUED": "Scheduled",
    "RUNNING": "Running",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
    "SKIPPED": "Skipped",
}


# ------------------------------------------------------------------------------------------ v1
def envelope(data: Any, *, cacheable: bool = False) -> dict[str, Any]:
    """The v1 envelope. Routes the real server caches also carry `cached_until`; the devserver
    caches nothing, so it is the fetch time itself."""
    fetched = iso_ms(now_ms())
    metadata = (
        {"fetched_at": fetched, "cached_until": fetched} if cacheable else {"fetched_at": fetched}
    )
    return {"data": data, "metadata": metadata}


def public_error(status: int, message: str, data: Any = None) -> dict[str, Any]:
    """The v1 (and Event API helper) error body."""
    return {"error": message, "data": data, "status": status}


def v1_error(status: int, message: str, *, http_status: int | None = None) -> JSONResponse:
    """A v1 error. The real server answers GETs that reach their handler with HTTP 200 and the
    error status in the body: pass http_status=200 there."""
    return JSONResponse(
        public_error(status, message), status if http_status is None else http_status
    )


def auth_failed() -> PlainTextResponse:
    return PlainTextResponse("Authentication failed\n", 401)


def waiting_reason(engine: Any, run: RunState) -> str | None:
    """Why a queued run is not executing right now (flow control), for run views."""
    if run.reason or run.status not in ("Scheduled", "Running"):
        return None
    lookup = getattr(engine.flow, "waiting_reason", None)
    return lookup(run.run_id, run.function_slug) if lookup is not None else None


def v1_run(run: RunState, *, waiting: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "run_started_at": iso_ms(run.started_at or run.queued_at),
        "function_id": run.function_uuid,
        "function_version": 0,
        "environment_id": ZERO_UUID,
        "event_id": run.event_id,
    }
    if run.batch_id:
        body["batch_id"] = run.batch_id
    if run.original_run_id:
        body["original_run_id"] = run.original_run_id
    if run.cron:
        body["cron"] = run.cron
    body["status"] = run.status
    body["ended_at"] = iso_ms(run.ended_at)
    if run.terminal:
        body["output"] = {} if run.status == "Cancelled" else run.output
    if run.reason or waiting:  # devserver extra: why skipped / cancelled / not running yet
        body["reason"] = run.reason or waiting
    return body


def v1_event(stored: StoredEvent) -> dict[str, Any]:
    body = stored.event
    result: dict[str, Any] = {
        "internal_id": stored.internal_id,
        "account_id": ZERO_UUID,
        "environment_id": ZERO_UUID,
        "source": "",
        "source_id": None,
        "received_at": iso_ms(stored.received_at),
        "id": body.get("id"),
        "name": body.get("name"),
        "data": body.get("data", {}),
    }
    if body.get("user"):
        result["user"] = body["user"]
    result["ts"] = body.get("ts")
    if body.get("v"):
        result["v"] = body["v"]
    return result


def v1_function(fn: FunctionDef, app_uuid: str, created_at: int | None) -> dict[str, Any]:
    """A row of `/v1/apps/{app}/functions`: `id` is the app-prefixed slug, `internal_id` the
    UUID that v1 runs carry as `function_id`."""
    return {
        "internal_id": fn.uuid,
        "env_id": ZERO_UUID,
        "app_id": app_uuid,
        "id": fn.slug,
        "name": fn.name,
        "config": {**fn.config, "id": fn.uuid, "slug": fn.slug, "fv": 1},
        "created_at": iso_ms(created_at),
        "archived_at": "0001-01-01T00:00:00Z",
    }


# ------------------------------------------------------------------------------------------ v2
def v2_metadata(time_range: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"fetchedAt": iso_ms(now_ms())}
    if time_range:
        metadata["timeRange"] = time_range
    return metadata


def v2_envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "metadata": v2_metadata()}


def v2_list(
    items: list[Any],
    *,
    limit: int,
    cursor: str | None = None,
    time_range: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A v2 list answer: no `data` key when empty; `cursor`/`hasMore` only when more follow."""
    body: dict[str, Any] = {}
    if items:
        body["data"] = items
    body["metadata"] = v2_metadata(time_range)
    page: dict[str, Any] = {}
    if cursor:
        page["cursor"] = cursor
        page["hasMore"] = True
    page["limit"] = limit
    body["page"] = page
    return body


def v2_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message}]}, status)


def local_function_id(slug: str, app_name: str) -> str:
    prefix = app_name + "-"
    return slug[len(prefix) :] if slug.startswith(prefix) else slug


def v2_output(value: Any) -> Any:
    """proto Struct: a non-object value is wrapped as {"data": value}."""
    return value if isinstance(value, dict) else {"data": value}


def v2_run(
    run: RunState,
    *,
    function_name: str | None = None,
    include_output: bool = False,
    waiting: str | None = None,
) -> dict[str, Any]:
    local_id = local_function_id(run.function_slug, run.app_name)
    body: dict[str, Any] = {"app": {"id": run.app_name}}
    if run.ended_at is not None:
        started = run.started_at or run.queued_at
        body["durationMs"] = str(max(0, run.ended_at - started))
        body["endedAt"] = iso_ms(run.ended_at)
    body["function"] = {"id": local_id, "name": function_name or local_id}
    body["id"] = run.run_id
    if include_output and run.terminal and run.status != "Cancelled" and run.output is not None:
        body["output"] = v2_output(run.output)
    body["queuedAt"] = iso_ms(run.queued_at)
    if run.reason or waiting:  # devserver extra: why skipped / cancelled / not running yet
        body["reason"] = run.reason or waiting
    if run.started_at is not None:
        body["startedAt"] = iso_ms(run.started_at)
    body["status"] = V2_STATUS.get(run.status, "QUEUED")
    trigger: dict[str, Any] = {"eventIds": [run.event_id]}
    if run.batch_id:
        trigger["batchId"] = run.batch_id
        trigger["isBatch"] = True
    if run.cron:
        trigger["cronSchedule"] = run.cron
    body["trigger"] = trigger
    return body


def v2_app(app: Any, function_count: int) -> dict[str, Any]:
    language, _, version = (app.sdk or "").partition(":")
    sync: dict[str, Any] = {}
    if app.framework:
        sync["framework"] = app.framework
    if language:
        sync["sdkLanguage"] = language
    if version:
        sync["sdkVersion"] = version
    if app.url:
        sync["url"] = app.url
    body: dict[str, Any] = {"createdAt": iso_ms(app.created_at)}
    if function_count:
        body["functionCount"] = function_count
    body["id"] = app.name
    if sync:
        body["latestSync"] = sync
    body["method"] = "SERVE"
    body["name"] = app.name
    return body


def _trigger(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("cron"):
        trigger: dict[str, Any] = {"type": "CRON", "value": raw["cron"]}
    else:
        trigger = {"type": "EVENT", "value": raw.get("event", "")}
    if raw.get("expression"):
        trigger["if"] = raw["expression"]
    return trigger


def _configuration(fn: FunctionDef) -> dict[str, Any]:
    config = fn.config
    result: dict[str, Any] = {}
    cancellations = [
        {
            "event": c.get("event", ""),
            **({"timeout": c["timeout"]} if c.get("timeout") else {}),
            **({"condition": c["if"]} if c.get("if") else {}),
        }
        for c in config.get("cancel") or []
        if isinstance(c, dict)
    ]
    if cancellations:
        result["cancellations"] = cancellations
    concurrency = []
    for item in config.get("concurrency") or []:
        if isinstance(item, dict):
            entry: dict[str, Any] = {
                "limit": {"value": int(item.get("limit", 0))},
                "scope": str(item.get("scope") or "fn").upper().replace("FN", "FUNCTION"),
            }
            if item.get("key"):
                entry["key"] = item["key"]
            concurrency.append(entry)
    result["concurrency"] = concurrency or [
        {"limit": {"isPlanLimit": True, "value": -1}, "scope": "ACCOUNT"}
    ]
    if config.get("debounce"):
        result["debounce"] = {k: v for k, v in config["debounce"].items() if k in ("period", "key")}
    batch = config.get("batchEvents")
    if batch:
        result["eventsBatch"] = {
            "maxSize": batch.get("maxSize", 0),
            "timeout": batch.get("timeout", ""),
            **({"key": batch["key"]} if batch.get("key") else {}),
        }
    if config.get("priority", {}).get("run"):
        result["priority"] = config["priority"]["run"]
    limit = config.get("rateLimit")
    if limit:
        result["rateLimit"] = {k: v for k, v in limit.items() if k in ("limit", "period", "key")}
    step = config.get("steps", {}).get("step", {})
    attempts = step.get("retries", {}).get("attempts")
    retries: dict[str, Any] = {"isDefault": attempts is None}
    if fn.retries:
        retries["value"] = fn.retries
    result["retries"] = retries
    singleton = config.get("singleton")
    if singleton:
        result["singleton"] = {
            **({"key": singleton["key"]} if singleton.get("key") else {}),
            "mode": str(singleton.get("mode") or "skip").upper(),
        }
    throttle = config.get("throttle")
    if throttle:
        result["throttle"] = {
            k: v for k, v in throttle.items() if k in ("burst", "key", "limit", "period")
        }
    return result


def v2_function(fn: FunctionDef) -> dict[str, Any]:
    local_id = fn.local_id
    return {
        "app": {"id": fn.app_name},
        "configuration": _configuration(fn),
        "id": local_id,
        "name": fn.name,
        "slug": local_id,
        "triggers": [_trigger(t) for t in fn.config.get("triggers", []) if isinstance(t, dict)],
    }
