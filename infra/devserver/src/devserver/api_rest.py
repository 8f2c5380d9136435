"""REST API: /v0 (SDK use_api) and /v1 (tooling) routes (protocol §8); /v2 is in api_v2.

No response caching: every read hits the store, so tests can poll.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from devserver import store as t
from devserver.engine import Engine
from devserver.runstate import RunState
from devserver.signing import bearer_ok
from devserver.util import is_ulid, new_ulid, now_ms, parse_iso_ms
from devserver.views import envelope, public_error, v1_event, v1_function


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def require_key(request: Request) -> None:
    """With a signing key (server kind cloud) these routes need the Bearer signing key."""
    engine = engine_of(request)
    key = engine.settings.signing_key
    if key and not bearer_ok(request.headers.get("authorization"), key):
        from fastapi import HTTPException

        raise HTTPException(401, "Authentication failed")


router_v0 = APIRouter(prefix="/v0", dependencies=[Depends(require_key)])
router_v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(public_error(status, message), status)


async def runs_for_event(engine: Engine, event_id: str) -> list[RunState]:
    rows = await engine.store.fetch_all(
        select(t.runs)
        .where(
            t.runs.c.run_id.in_(
                select(t.run_events.c.run_id).where(t.run_events.c.event_id == event_id)
            )
        )
        .order_by(t.runs.c.run_id)
    )
    return [RunState.from_row(r) for r in rows]


async def load_run(engine: Engine, run_id: str) -> RunState | None:
    cached = engine._cache.get(run_id)
    if cached is not None:
        return cached
    row = await engine.store.fetch_one(select(t.runs).where(t.runs.c.run_id == run_id))
    return RunState.from_row(row) if row is not None else None


# ---------------------------------------------------------------------------- v0
@router_v0.get("/runs/{run_id}/batch")
async def v0_batch(run_id: str, request: Request) -> Response:
    run = await load_run(engine_of(request), run_id)
    if run is None or run.terminal:
        return error(410, "run state not found")
    return JSONResponse(run.events)


@router_v0.get("/runs/{run_id}/actions")
async def v0_actions(run_id: str, request: Request) -> Response:
    engine = engine_of(request)
    run = await engine.get_run(run_id)
    if run is None or run.terminal:
        return error(410, "run state not found")
    return JSONResponse(run.memos)


@router_v0.delete("/runs/{run_id}")
async def v0_cancel(run_id: str, request: Request) -> Response:
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return error(404, "run not found")
    if run.terminal:
        return error(409, "run already finished")
    await engine.cancel_run(run_id, reason="cancelled via API")
    return Response(status_code=204)


# ---------------------------------------------------------------------------- v1
@router_v1.get("/events")
async def v1_events(
    request: Request,
    limit: int = 20,
    cursor: str | None = None,
    name: str | None = None,
    received_after: str | None = None,
    received_before: str | None = None,
) -> Response:
    engine = engine_of(request)
    query = select(t.events).order_by(t.events.c.internal_id.desc())
    if name:
        query = query.where(t.events.c.name == name)
    if cursor:
        query = query.where(t.events.c.internal_id < cursor)
    try:
        if received_after:
            query = query.where(t.events.c.received_at >= parse_iso_ms(received_after))
        if received_before:
            query = query.where(t.events.c.received_at <= parse_iso_ms(received_before))
    except ValueError as exc:
        return error(400, f"invalid time: {exc}")
    rows = await engine.store.fetch_all(query.limit(max(1, min(limit, 1000))))
    data = [v1_event(r) for r in rows]
    extra: dict[str, Any] = {}
    if len(rows) == limit:
        extra["cursor"] = rows[-1].internal_id
    return JSONResponse(envelope(data, **extra))


@router_v1.get("/events/{event_id}")
async def v1_event_get(event_id: str, request: Request) -> Response:
    if not is_ulid(event_id):
        return error(400, "invalid event ID: not a ULID")
    engine = engine_of(request)
    row = await engine.store.fetch_one(select(t.events).where(t.events.c.internal_id == event_id))
    if row is None:
        return error(404, "event not found")
    return JSONResponse(envelope(v1_event(row)))


@router_v1.get("/events/{event_id}/runs")
async def v1_event_runs(event_id: str, request: Request) -> Response:
    if not is_ulid(event_id):
        return error(400, "invalid event ID: not a ULID")
    from devserver.views import v1_run, waiting_reason

    engine = engine_of(request)
    runs = await runs_for_event(engine, event_id)
    return JSONResponse(envelope([v1_run(r, waiting=waiting_reason(engine, r)) for r in runs]))


@router_v1.get("/runs/{run_id}")
async def v1_run_get(run_id: str, request: Request) -> Response:
    from devserver.views import v1_run, waiting_reason

    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return error(500, "Unable to load function run")
    return JSONResponse(envelope(v1_run(run, waiting=waiting_reason(engine, run))))


@router_v1.delete("/runs/{run_id}")
async def v1_run_cancel(run_id: str, request: Request) -> Response:
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        return error(404, "run not found")
    await engine.cancel_run(run_id, reason="cancelled via API")
    return Response(status_code=200)


@router_v1.get("/runs/{run_id}/jobs")
async def v1_run_jobs(run_id: str, request: Request) -> Response:
    engine = engine_of(request)
    jobs = engine.queue.jobs_of_run(run_id)[:10]
    return JSONResponse(
        envelope(
            [
                {
                    "id": j.job_id,
                    "kind": j.kind,
                    "step_id": j.step_hash,
                    "attempt": j.attempt,
                    "at": j.run_at,
                }
                for j in jobs
            ]
        )
    )


@router_v1.get("/apps/{app_name}/functions")
async def v1_app_functions(app_name: str, request: Request) -> Response:
    engine = engine_of(request)
    app = engine.registry.apps.get(app_name)
    if app is None:
        return error(404, f"app not found: {app_name}")
    return JSONResponse([v1_function(fn, app.id) for fn in engine.registry.app_functions(app_name)])


@router_v1.post("/cancellations")
async def v1_bulk_cancel(request: Request) -> Response:
    engine = engine_of(request)
    try:
        body = await request.json()
    except ValueError as exc:
        return error(400, f"invalid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "body must be an object")
    app_name, function_id = body.get("app_id"), body.get("function_id")
    if not isinstance(app_name, str) or not app_name:
        return error(400, "app_id is required")
    if not isinstance(function_id, str) or not function_id:
        return error(400, "function_id is required")
    fn = engine.registry.find(function_id) or engine.registry.find(f"{app_name}-{function_id}")
    if fn is None or fn.app_name != app_name:
        return error(404, f"function not found: {app_name}/{function_id}")
    try:
        before = parse_iso_ms(str(body["started_before"]))
    except (KeyError, ValueError):
        return error(400, "started_before is required (RFC 3339)")
    if before > now_ms() + 1000:
        return error(400, "started_before must not be in the future")
    after = None
    if body.get("started_after"):
        try:
            after = parse_iso_ms(str(body["started_after"]))
        except ValueError:
            return error(400, "started_after must be RFC 3339")
    expression = body.get("if")
    compiled = None
    if expression:
        from devserver.expressions import compile_expression

        try:
            compiled = compile_expression(str(expression))
        except Exception as exc:
            return error(400, f"invalid expression: {exc}")
    query = select(t.runs).where(
        t.runs.c.function_slug == fn.slug,
        t.runs.c.status.in_(("Scheduled", "Running")),
        t.runs.c.queued_at <= before,
    )
    if after is not None:
        query = query.where(t.runs.c.queued_at >= after)
    cancelled = 0
    for row in await engine.store.fetch_all(query):
        run = RunState.from_row(row)
        if compiled is not None and not compiled.matches({"event": run.events[0]}):
            continue
        if await engine.cancel_run(run.run_id, reason="bulk cancellation"):
            cancelled += 1
    cancellation_id = new_ulid()
    from sqlalchemy import insert

    await engine.store.write(
        [
            (
                insert(t.cancellations),
                {
                    "id": cancellation_id,
                    "app_name": app_name,
                    "function_slug": fn.slug,
                    "started_after": after,
                    "started_before": before,
                    "expression": expression,
                    "cancelled": cancelled,
                    "created_at": now_ms(),
                },
            )
        ]
    )
    return JSONResponse(
        {
            "id": cancellation_id,
            "app_id": app_name,
            "function_id": function_id,
            "started_after": body.get("started_after"),
            "started_before": body.get("started_before"),
            "if": expression,
            "cancelled_count": cancelled,
        }
    )


@router_v1.get("/cancellations")
async def v1_cancellations(request: Request) -> Response:
    rows = await engine_of(request).store.fetch_all(
        select(t.cancellations).order_by(t.cancellations.c.id.desc())
    )
    return JSONResponse(
        envelope(
            [
                {
                    "id": r.id,
                    "app_id": r.app_name,
                    "function_id": r.function_slug,
                    "if": r.expression,
                    "cancelled_count": r.cancelled,
                }
                for r in rows
            ]
        )
    )
