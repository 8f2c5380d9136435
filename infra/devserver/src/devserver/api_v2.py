"""REST API /v2 (mounted at /v2 and /api/v2): runs, cancel, rerun, trace, apps, functions,
invoke (protocol §8.3). No response caching."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from devserver import store as t
from devserver.api_rest import engine_of, error, load_run, require_key, runs_for_event
from devserver.engine import Engine
from devserver.runstate import RunState
from devserver.util import dumps, loads
from devserver.views import envelope, v2_function, v2_run, waiting_reason

router_v2 = APIRouter(dependencies=[Depends(require_key)])


@router_v2.get("/health")
async def v2_health() -> dict[str, Any]:
    return envelope({"status": "ok"})


@router_v2.get("/runs")
async def v2_runs(
    request: Request,
    status: str | None = None,
    app_id: str | None = None,
    function_id: str | None = None,
    limit: int = 40,
    cursor: str | None = None,
    include_output: bool = False,
    order: str = "desc",
) -> Response:
    engine = engine_of(request)
    query = select(t.runs)
    if status:
        query = query.where(
            t.runs.c.status.in_([s.strip().capitalize() for s in status.split(",")])
        )
    if app_id:
        query = query.where(t.runs.c.app_name == app_id)
    if function_id:
        slug = (
            function_id
            if not app_id or function_id.startswith(app_id + "-")
            else f"{app_id}-{function_id}"
        )
        query = query.where(t.runs.c.function_slug == slug)
    if cursor:
        query = query.where(
            t.runs.c.run_id < cursor if order == "desc" else t.runs.c.run_id > cursor
        )
    query = query.order_by(t.runs.c.run_id.desc() if order == "desc" else t.runs.c.run_id)
    rows = await engine.store.fetch_all(query.limit(max(1, min(limit, 1000))))
    states = [RunState.from_row(r) for r in rows]
    runs = [
        v2_run(r, include_output=include_output, waiting=waiting_reason(engine, r)) for r in states
    ]
    page = {"cursor": rows[-1].run_id if rows else None, "has_more": len(rows) == limit}
    return JSONResponse(envelope(runs, page=page))


@router_v2.get("/runs/{run_id}")
async def v2_run_get(run_id: str, request: Request, include_output: bool = True) -> Response:
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return error(404, "run not found")
    waiting = waiting_reason(engine, run)
    return JSONResponse(envelope(v2_run(run, include_output=include_output, waiting=waiting)))


@router_v2.post("/runs/{run_id}/cancel")
async def v2_run_cancel(run_id: str, request: Request) -> Response:
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return error(404, "run not found")
    cancelled = await engine.cancel_run(run_id, reason="cancelled via API")
    run = await load_run(engine, run_id)
    assert run is not None
    return JSONResponse(envelope({"run_id": run_id, "cancelled": cancelled, "status": run.status}))


@router_v2.post("/runs/{run_id}/rerun")
async def v2_run_rerun(run_id: str, request: Request) -> Response:
    engine = engine_of(request)
    raw = await request.body()
    try:
        body = loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return error(400, f"invalid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "body must be an object")
    from_step = body.get("from_step")
    step_id = None
    if from_step is not None:
        if not isinstance(from_step, dict) or not isinstance(from_step.get("step_id"), str):
            return error(400, "from_step.step_id must be a string")
        step_id = from_step["step_id"]
    try:
        new_run_id = await engine.rerun(run_id, from_step=step_id)
    except KeyError as exc:
        return error(400, str(exc.args[0]))
    except LookupError as exc:
        return error(404, str(exc))
    if new_run_id is None:
        return error(404, "run not found")
    return JSONResponse(envelope({"run_id": new_run_id, "original_run_id": run_id}))


@router_v2.get("/runs/{run_id}/trace")
async def v2_run_trace(run_id: str, request: Request, include_output: bool = True) -> Response:
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return error(404, "run not found")
    attempts = await engine.store.fetch_all(
        select(t.attempts).where(t.attempts.c.run_id == run_id).order_by(t.attempts.c.id)
    )
    memo_rows = await engine.store.fetch_all(
        select(t.steps).where(t.steps.c.run_id == run_id).order_by(t.steps.c.seq)
    )
    steps = []
    for row in memo_rows:
        tries = [a for a in attempts if a.step_hash == row.hash]
        step: dict[str, Any] = {
            "step_id": row.hash,
            "name": row.step_id,
            "op": row.op,
            "status": "Failed"
            if isinstance(loads(row.memo), dict) and loads(row.memo).get("error") is not None
            else "Completed",
            "attempts": len(tries) or 1,
            "started_at": min((a.started_at for a in tries), default=row.created_at),
            "ended_at": row.created_at,
        }
        if include_output:
            step["output"] = loads(row.memo)
        steps.append(step)
    spans = [
        {
            "id": a.id,
            "job_kind": a.job_kind,
            "step_id": a.step_hash,
            "name": a.step_name,
            "op": a.op,
            "attempt": a.attempt,
            "started_at": a.started_at,
            "ended_at": a.ended_at,
            "status": a.status,
            "error": loads(a.error),
            **({"output": loads(a.output)} if include_output else {}),
        }
        for a in attempts
    ]
    return JSONResponse(
        envelope(
            {"run": v2_run(run, include_output=include_output), "steps": steps, "attempts": spans}
        )
    )


@router_v2.get("/events/{event_id}/runs")
async def v2_event_runs(event_id: str, request: Request, include_output: bool = False) -> Response:
    runs = await runs_for_event(engine_of(request), event_id)
    return JSONResponse(envelope([v2_run(r, include_output=include_output) for r in runs]))


@router_v2.get("/apps")
async def v2_apps(request: Request) -> Response:
    engine = engine_of(request)
    apps = [
        {
            "id": a.name,
            "uuid": a.id,
            "url": a.url,
            "sdk": a.sdk,
            "framework": a.framework,
            "function_count": len(engine.registry.app_functions(a.name)),
        }
        for a in engine.registry.apps.values()
    ]
    return JSONResponse(envelope(apps))


@router_v2.get("/apps/{app_id}")
async def v2_app(app_id: str, request: Request) -> Response:
    engine = engine_of(request)
    app = engine.registry.apps.get(app_id)
    if app is None:
        return error(404, f"app not found: {app_id}")
    return JSONResponse(
        envelope(
            {
                "id": app.name,
                "uuid": app.id,
                "url": app.url,
                "sdk": app.sdk,
                "framework": app.framework,
                "function_count": len(engine.registry.app_functions(app_id)),
            }
        )
    )


@router_v2.get("/apps/{app_id}/functions")
async def v2_app_functions(app_id: str, request: Request) -> Response:
    engine = engine_of(request)
    if app_id not in engine.registry.apps:
        return error(404, f"app not found: {app_id}")
    return JSONResponse(envelope([v2_function(f) for f in engine.registry.app_functions(app_id)]))


def _function(engine: Engine, app_id: str, function_id: str) -> Any:
    fn = engine.registry.find(f"{app_id}-{function_id}") or engine.registry.find(function_id)
    if fn is None or fn.app_name != app_id:
        return None
    return fn


@router_v2.get("/apps/{app_id}/functions/{function_id}")
async def v2_function_get(app_id: str, function_id: str, request: Request) -> Response:
    fn = _function(engine_of(request), app_id, function_id)
    if fn is None:
        return error(404, f"function not found: {app_id}/{function_id}")
    return JSONResponse(envelope(v2_function(fn)))


@router_v2.get("/apps/{app_id}/functions/{function_id}/runs")
async def v2_function_runs(
    app_id: str, function_id: str, request: Request, limit: int = 40
) -> Response:
    engine = engine_of(request)
    fn = _function(engine, app_id, function_id)
    if fn is None:
        return error(404, f"function not found: {app_id}/{function_id}")
    rows = await engine.store.fetch_all(
        select(t.runs)
        .where(t.runs.c.function_slug == fn.slug)
        .order_by(t.runs.c.run_id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    return JSONResponse(
        envelope([v2_run(RunState.from_row(r), include_output=False) for r in rows])
    )


@router_v2.post("/apps/{app_id}/functions/{function_id}/invoke")
async def v2_function_invoke(app_id: str, function_id: str, request: Request) -> Response:
    engine = engine_of(request)
    fn = _function(engine, app_id, function_id)
    if fn is None:
        return error(404, f"function not found: {app_id}/{function_id}")
    raw = await request.body()
    try:
        body = loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return error(400, f"invalid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "body must be an object")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        return error(400, "data must be an object")
    key = body.get("idempotency_key")
    event_id = await engine.invoke_function(
        fn, data, idempotency_key=key if isinstance(key, str) else None
    )
    return JSONResponse(
        envelope({"event_id": event_id, "function_id": fn.slug, "data": loads(dumps(data))})
    )
