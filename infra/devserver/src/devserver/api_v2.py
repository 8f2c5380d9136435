"""REST API /v2 (mounted at /v2 and /api/v2), in the real server's proto-JSON dialect.

Runs, run trace, cancel, rerun, event runs, apps, functions, function runs, invoke: the routes of
`proto/api/v2/service.proto` Nerve uses, with its field names, enums, paging and error bodies
(see views.py and tests/fixtures/inngest-rest-recorded/). No response caching.
Query parameters are read by hand so that bad values get the real error body, not FastAPI's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from devserver.api_rest import engine_of, load_run, require_key
from devserver.api_v2_query import bool_param, limit_param, parse_run_query, run_page
from devserver.engine import Engine
from devserver.registry import FunctionDef
from devserver.runstate import RunState
from devserver.trace import build_trace
from devserver.util import is_ulid, loads, now_ms
from devserver.views import (
    v2_app,
    v2_envelope,
    v2_error,
    v2_function,
    v2_list,
    v2_run,
    waiting_reason,
)

router_v2 = APIRouter(dependencies=[Depends(require_key)])

INVOKE_WAIT_S = 30.0
IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000


def bad_run_id() -> JSONResponse:
    return v2_error(400, "invalid_field_format", "Run ID must be a valid ULID")


def run_not_found() -> JSONResponse:
    return v2_error(404, "not_found", "Run not found")


async def read_json_body(request: Request) -> tuple[Any, JSONResponse | None]:
    raw = await request.body()
    if not raw.strip():
        return None, None
    try:
        return loads(raw), None
    except ValueError as exc:
        return None, v2_error(400, "api_error", str(exc))


@router_v2.get("/health")
async def v2_health() -> dict[str, Any]:
    return v2_envelope({"status": "ok"})


# ------------------------------------------------------------------------------------- runs
@router_v2.get("/runs")
async def v2_runs(request: Request) -> Response:
    query = parse_run_query(request, max_limit=100)
    if isinstance(query, JSONResponse):
        return query
    if query.function_ids and not query.app_ids:
        return v2_error(
            400, "invalid_field_format", "appId is required when filtering by functionId"
        )
    return await run_page(engine_of(request), query)


@router_v2.get("/runs/")
async def v2_runs_no_id() -> Response:
    return v2_error(400, "missing_field", "Run ID is required")


@router_v2.get("/runs/{run_id}")
async def v2_run_get(run_id: str, request: Request) -> Response:
    if not is_ulid(run_id):
        return bad_run_id()
    include_output = bool_param(request, "include_output", "includeOutput")
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return run_not_found()
    fn = engine.registry.all_functions.get(run.function_slug)
    body = v2_run(
        run,
        function_name=fn.name if fn else None,
        include_output=include_output,
        waiting=waiting_reason(engine, run),
    )
    return JSONResponse(v2_envelope(body))


@router_v2.post("/runs/{run_id}/cancel")
async def v2_run_cancel(run_id: str, request: Request) -> Response:
    if not is_ulid(run_id):
        return bad_run_id()
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return run_not_found()
    if run.status == "Cancelled":
        return v2_error(409, "run_already_cancelled", "Run is already cancelled")
    if run.terminal or not await engine.cancel_run(run_id, reason="cancelled via API"):
        return v2_error(409, "run_already_ended", "Cannot cancel an ended run")
    return JSONResponse(v2_envelope({"runId": run_id}))


@router_v2.post("/runs/{run_id}/rerun")
async def v2_run_rerun(run_id: str, request: Request) -> Response:
    if not is_ulid(run_id):
        return bad_run_id()
    body, failure = await read_json_body(request)
    if failure is not None:
        return failure
    body = body if body is not None else {}
    if not isinstance(body, dict):
        return v2_error(400, "api_error", "request body must be a JSON object")
    from_step = body.get("fromStep", body.get("from_step"))
    step_id = None
    if from_step is not None:
        if not isinstance(from_step, dict):
            return v2_error(400, "api_error", "fromStep must be an object")
        step_id = from_step.get("stepId", from_step.get("step_id"))
        replacement = from_step.get("input")
        if replacement is not None and not isinstance(replacement, list):
            return v2_error(400, "api_error", "fromStep.input must be a JSON array")
        if not isinstance(step_id, str) or not step_id:
            return v2_error(400, "missing_field", "fromStep.stepId is required")
    engine = engine_of(request)
    try:
        new_run_id = await engine.scheduler.rerun(run_id, from_step=step_id)
    except KeyError:
        return v2_error(400, "invalid_request", "Step not found in original run")
    except LookupError as exc:
        return v2_error(404, "not_found", str(exc))
    if new_run_id is None:
        return run_not_found()
    return JSONResponse(v2_envelope({"runId": new_run_id}))


@router_v2.get("/runs/{run_id}/trace")
async def v2_run_trace(run_id: str, request: Request) -> Response:
    if not is_ulid(run_id):
        return bad_run_id()
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return v2_error(404, "not_found", "Trace not found")
    include_output = bool_param(request, "include_output", "includeOutput")
    return JSONResponse(
        v2_envelope(await build_trace(engine.store, run, include_output=include_output))
    )


@router_v2.get("/events/{event_id}/runs")
async def v2_event_runs(event_id: str, request: Request) -> Response:
    if not is_ulid(event_id):
        return v2_error(400, "invalid_field_format", "Event ID must be a valid ULID")
    query = parse_run_query(request, max_limit=40)
    if isinstance(query, JSONResponse):
        return query
    query.event_id = event_id
    return await run_page(engine_of(request), query)


# ------------------------------------------------------------------------------------- apps
def find_app(engine: Engine, app_id: str) -> Any:
    app = engine.registry.apps.get(app_id)
    if app is None:  # also by the app's internal UUID, as the real server does
        app = next((a for a in engine.registry.apps.values() if a.id == app_id), None)
    return app


@router_v2.get("/apps")
async def v2_apps(request: Request) -> Response:
    limit = limit_param(request, max_limit=100)
    if isinstance(limit, JSONResponse):
        return limit
    engine = engine_of(request)
    apps = sorted(engine.registry.apps.values(), key=lambda a: (a.created_at, a.id))
    cursor = request.query_params.get("cursor")
    if cursor:  # the internal id of the last app seen
        seen = [i for i, a in enumerate(apps) if a.id == cursor]
        apps = apps[seen[0] + 1 :] if seen else []
    page = apps[:limit]
    items = [v2_app(a, len(engine.registry.app_functions(a.name))) for a in page]
    more = page[-1].id if len(apps) > limit else None
    return JSONResponse(v2_list(items, limit=limit, cursor=more))


@router_v2.get("/apps/{app_id}")
async def v2_app_get(app_id: str, request: Request) -> Response:
    engine = engine_of(request)
    app = find_app(engine, app_id)
    if app is None:
        return v2_error(404, "not_found", "App not found")
    return JSONResponse(v2_envelope(v2_app(app, len(engine.registry.app_functions(app.name)))))


@router_v2.get("/apps/{app_id}/functions")
async def v2_app_functions(app_id: str, request: Request) -> Response:
    limit = limit_param(request, max_limit=100)
    if isinstance(limit, JSONResponse):
        return limit
    engine = engine_of(request)
    functions = sorted(engine.registry.app_functions(app_id), key=lambda f: f.uuid)
    cursor = request.query_params.get("cursor")
    if cursor:
        functions = [f for f in functions if f.uuid > cursor]
    page = functions[:limit]
    more = len(functions) > limit
    return JSONResponse(
        v2_list([v2_function(f) for f in page], limit=limit, cursor=page[-1].uuid if more else None)
    )


def find_function(engine: Engine, app_id: str, function_id: str) -> FunctionDef | None:
    """By the SDK function id (`two-steps`) or the app-prefixed slug (`app-two-steps`)."""
    for fn in engine.registry.app_functions(app_id):
        if function_id in (fn.local_id, fn.slug):
            return fn
    return None


@router_v2.get("/apps/{app_id}/functions/{function_id}")
async def v2_function_get(app_id: str, function_id: str, request: Request) -> Response:
    fn = find_function(engine_of(request), app_id, function_id)
    if fn is None:
        return v2_error(404, "not_found", "Function not found")
    return JSONResponse(v2_envelope(v2_function(fn)))


@router_v2.get("/apps/{app_id}/functions/{function_id}/runs")
async def v2_function_runs(app_id: str, function_id: str, request: Request) -> Response:
    query = parse_run_query(request, max_limit=100)
    if isinstance(query, JSONResponse):
        return query
    query.app_ids = [app_id]
    query.function_ids = [function_id]
    return await run_page(engine_of(request), query)


# ----------------------------------------------------------------------------------- invoke
@router_v2.post("/apps/{app_id}/functions/{function_id}/invoke")
async def v2_function_invoke(app_id: str, function_id: str, request: Request) -> Response:
    engine = engine_of(request)
    fn = find_function(engine, app_id, function_id)
    if fn is None:
        return v2_error(404, "not_found", "Function not found")
    body, failure = await read_json_body(request)
    if failure is not None:
        return failure
    if not isinstance(body, dict) or "data" not in body:
        return v2_error(400, "missing_field", "Input data is required")
    data = body["data"]
    if not isinstance(data, dict):
        return v2_error(400, "api_error", "data must be a JSON object")
    key = body.get("idempotencyKey", body.get("idempotency_key"))
    key = key if isinstance(key, str) and key else None
    if key is not None:
        earlier = await earlier_invoke_run(engine, fn, key)
        if earlier is not None:
            return JSONResponse(v2_envelope({"runId": earlier}), 409)
    event_id = await engine.ingest.invoke_function(fn, data, idempotency_key=key)
    debounced = bool(fn.config.get("debounce"))  # a debounced invoke never runs at once
    run = await wait_for_event_run(engine, event_id, 0.5 if debounced else INVOKE_WAIT_S)
    if run is None and debounced:
        return v2_error(422, "function_debounced", "Function invocation was debounced.")
    if run is None:  # flow control holds it (batch) or the engine is backlogged
        return v2_error(500, "internal_error", "The invoked run was not created in time.")
    if run.status == "Skipped":
        if "rate limit" in (run.reason or ""):
            return v2_error(
                422,
                "rate_limited",
                "Function execution rate limit exceeded. Please try again later.",
            )
        return v2_error(
            422,
            "function_skipped",
            "Function invocation was skipped because the function is paused or draining.",
        )
    return JSONResponse(v2_envelope({"runId": run.run_id}))


async def earlier_invoke_run(engine: Engine, fn: FunctionDef, key: str) -> str | None:
    """The run of an earlier invoke of fn with the same idempotency key (within 24 h)."""
    since = now_ms() - IDEMPOTENCY_WINDOW_MS
    for stored in await engine.store.events.invokes_with_key(key, since_ms=since):
        data = stored.event.get("data") or {}
        if (data.get("_inngest") or {}).get("fn_id") != fn.slug:
            continue
        run = await engine.store.runs.first_of_event(stored.internal_id)
        if run is not None:
            return run.run_id
    return None


async def wait_for_event_run(engine: Engine, event_id: str, wait_s: float) -> RunState | None:
    """Runs are created by the event loop: wait (briefly) until the invoke event has its run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        run = await engine.store.runs.first_of_event(event_id)
        if run is not None or loop.time() > deadline:
            return run
        await asyncio.sleep(0.01)
