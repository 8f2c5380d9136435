"""REST API: /v0 (SDK use_api) and /v1 (tooling) routes; /v2 is in api_v2.

/v1 follows the real server: snake_case, `{"data", "metadata"}`, errors `{"error", "data": null,
"status"}`, and (like the real server) a GET that reaches its handler answers HTTP 200 even when
the body carries an error status. No response caching: every read hits the store, so tests can
poll (the real server caches some v1 reads, see README "Differences").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from devserver.engine import Engine
from devserver.expressions import compile_expression
from devserver.records import Cancellation
from devserver.runstate import RunState
from devserver.signing import bearer_ok
from devserver.util import is_ulid, iso_ms, new_ulid, now_ms, parse_iso_ms
from devserver.views import (
    ZERO_UUID,
    envelope,
    v1_error,
    v1_event,
    v1_function,
    v1_run,
    waiting_reason,
)


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def require_key(request: Request) -> None:
    """With a signing key (server kind cloud) these routes need the Bearer signing key."""
    engine = engine_of(request)
    key = engine.settings.signing_key
    if key and not bearer_ok(request.headers.get("authorization"), key):
        raise AuthFailed()


class AuthFailed(Exception):
    """Missing or wrong Bearer key: the real server answers 401 `Authentication failed` as text."""


router_v0 = APIRouter(prefix="/v0", dependencies=[Depends(require_key)])
router_v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


def error(status: int, message: str) -> JSONResponse:
    return v1_error(status, message)


async def load_run(engine: Engine, run_id: str) -> RunState | None:
    """The live run from memory, else as stored (without memos)."""
    cached = engine.runs.cached(run_id)
    if cached is not None:
        return cached
    return await engine.store.runs.get(run_id)


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
    run = await engine.runs.get(run_id)
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
V1_DEFAULT_EVENTS = 20
V1_MAX_EVENTS = 51  # the real server's cqrs.MaxEvents


def get_error(status: int, message: str) -> JSONResponse:
    """A v1 GET error: HTTP 200 with the status in the body, as the real server answers."""
    return v1_error(status, message, http_status=200)


@router_v1.get("/events")
async def v1_events(request: Request) -> Response:
    engine = engine_of(request)
    q = request.query_params
    try:  # as the real server: a bad or zero limit means 20, at most 51
        limit = int(q.get("limit") or 0) or V1_DEFAULT_EVENTS
    except ValueError:
        limit = V1_DEFAULT_EVENTS
    cursor = q.get("cursor")
    if cursor and not is_ulid(cursor):
        return get_error(400, "Invalid cursor query parameter")
    window: dict[str, int | None] = {}
    for name in ("received_after", "received_before"):
        raw = q.get(name)
        try:
            if raw and "T" not in raw:
                raise ValueError(raw)
            window[name] = parse_iso_ms(raw) if raw else None
        except ValueError:
            return get_error(400, f"Invalid {name} query parameter")
    events = await engine.store.events.page(
        limit=max(1, min(limit, V1_MAX_EVENTS)),
        name=q.get("name") or None,
        before_id=cursor or None,
        received_from=window["received_after"],
        received_until=window["received_before"],
    )
    return JSONResponse(envelope([v1_event(e) for e in events]))


@router_v1.get("/events/{event_id}")
async def v1_event_get(event_id: str, request: Request) -> Response:
    if not is_ulid(event_id):
        return get_error(400, f"Invalid event ID: {event_id}")
    engine = engine_of(request)
    stored = await engine.store.events.get(event_id)
    if stored is None:
        return get_error(404, "Event not found")
    return JSONResponse(envelope(v1_event(stored), cacheable=True))


@router_v1.get("/events/{event_id}/runs")
async def v1_event_runs(event_id: str, request: Request) -> Response:
    if not is_ulid(event_id):
        return get_error(400, f"Invalid event ID: {event_id}")
    engine = engine_of(request)
    runs = await engine.store.runs.of_event(event_id)
    runs_json = [v1_run(r, waiting=waiting_reason(engine, r)) for r in runs]
    return JSONResponse(envelope(runs_json, cacheable=True))


@router_v1.get("/runs/{run_id}")
async def v1_run_get(run_id: str, request: Request) -> Response:
    if not is_ulid(run_id):
        return get_error(400, f"Invalid run ID: {run_id}")
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None:
        # The real server says 500 here; an unknown id is not a server fault (README).
        return get_error(404, f"Unable to load function run: {run_id}")
    run_json = v1_run(run, waiting=waiting_reason(engine, run))
    return JSONResponse(envelope(run_json, cacheable=True))


@router_v1.delete("/runs/{run_id}")
async def v1_run_cancel(run_id: str, request: Request) -> Response:
    """Works here; the real server answers 404 for every run (use POST /v2/runs/{id}/cancel)."""
    if not is_ulid(run_id):
        return v1_error(400, f"Invalid run ID: {run_id}")
    engine = engine_of(request)
    run = await load_run(engine, run_id)
    if run is None or run.terminal:
        return v1_error(404, f"Unable to load function run: {run_id}")
    await engine.cancel_run(run_id, reason="cancelled via API")
    return JSONResponse(envelope(None))


@router_v1.get("/runs/{run_id}/jobs")
async def v1_run_jobs(run_id: str, request: Request) -> Response:
    """Queued jobs of the run, in the real server's queue-item shape (`JobID`, `Raw`)."""
    if not is_ulid(run_id):
        return get_error(400, f"Invalid run ID: {run_id}")
    engine = engine_of(request)
    jobs = engine.queue.jobs_of_run(run_id)[:10]
    return JSONResponse(
        envelope(
            [
                {
                    "JobID": j.job_id,
                    "at": iso_ms(j.run_at),
                    "position": position,
                    "kind": j.kind,
                    "attempt": j.attempt,
                    "Raw": {
                        "id": j.job_id,
                        "at": j.run_at,
                        "data": {
                            "kind": j.kind,
                            "identifier": {"runID": run_id},
                            "atts": j.attempt,
                            "payload": {"edge": {"incoming": "step", "outgoing": j.step_hash}},
                        },
                    },
                }
                for position, j in enumerate(jobs, start=1)
            ],
            cacheable=True,
        )
    )


@router_v1.get("/apps/{app_name}/functions")
async def v1_app_functions(app_name: str, request: Request) -> Response:
    """A bare array (no envelope); an unknown app (or its UUID) gives `[]` as on the real server."""
    engine = engine_of(request)
    app = engine.registry.apps.get(app_name)
    if app is None:
        return JSONResponse([])
    return JSONResponse(
        [v1_function(fn, app.id, app.created_at) for fn in engine.registry.app_functions(app_name)]
    )


def cancellation_body(engine: Engine, record: Cancellation) -> dict[str, Any]:
    """The real server's `cqrs.Cancellation` JSON, plus the devserver's `cancelled_count`."""
    app = engine.registry.apps.get(record.app_name)
    fn = engine.registry.all_functions.get(record.function_slug)
    body: dict[str, Any] = {
        "created_at": iso_ms(record.created_at),
        "name": None,
        "id": record.id,
        "account_id": ZERO_UUID,
        "environment_id": ZERO_UUID,
        "app_id": app.id if app is not None else ZERO_UUID,
        "function_internal_id": fn.uuid if fn is not None else ZERO_UUID,
        "function_id": fn.slug if fn is not None else "",
        "started_after": iso_ms(record.started_after),
        "started_before": iso_ms(record.started_before),
    }
    if record.expression:
        body["if"] = record.expression
    body["kind"] = "bulk_run"
    body["cause"] = "api"
    body["cancelled_count"] = record.cancelled  # devserver extra
    return body


@router_v1.post("/cancellations")
async def v1_bulk_cancel(request: Request) -> Response:
    """Bulk cancel: works here (the real server's store behind it is not wired: 500)."""
    engine = engine_of(request)
    try:
        body = await request.json()
    except ValueError:
        return error(400, "Invalid cancellation request")
    if not isinstance(body, dict):
        return error(400, "Invalid cancellation request")
    app_name, function_id = body.get("app_id"), body.get("function_id")
    missing = [
        f"{name} is required"
        for name, value in (
            ("app_id", app_name),
            ("function_id", function_id),
            ("started_before", body.get("started_before")),
        )
        if not isinstance(value, str) or not value
    ]
    if missing:
        return error(400, "\n".join(missing))
    try:
        before = parse_iso_ms(str(body["started_before"]))
        after = parse_iso_ms(str(body["started_after"])) if body.get("started_after") else None
    except ValueError:
        return error(400, "Invalid cancellation request")
    if before > now_ms() + 1000:
        return error(400, "started_before must be in the past")
    # As on the real server: function_id is the app-prefixed slug (`app-fn`).
    fn = engine.registry.functions.get(str(function_id))
    if fn is None or fn.app_name != app_name:
        return error(404, "function not found")
    expression = body.get("if")
    compiled = None
    if expression:
        try:
            compiled = compile_expression(str(expression))
        except Exception as exc:
            return error(400, f"invalid expression: {exc}")
    cancelled = 0
    live = await engine.store.runs.live_of_function(
        fn.slug, queued_before=before, queued_after=after
    )
    for run in live:
        if compiled is not None and not compiled.matches({"event": run.events[0]}):
            continue
        if await engine.cancel_run(run.run_id, reason="bulk cancellation"):
            cancelled += 1
    record = Cancellation(
        id=new_ulid(),
        app_name=str(app_name),
        function_slug=fn.slug,
        started_after=after,
        started_before=before,
        expression=expression,
        cancelled=cancelled,
        created_at=now_ms(),
    )
    changes = engine.store.changes()
    changes.cancellations.add(record)
    await engine.store.commit(changes)
    return JSONResponse(cancellation_body(engine, record))


@router_v1.get("/cancellations")
async def v1_cancellations(request: Request) -> Response:
    engine = engine_of(request)
    records = await engine.store.cancellations.all()
    return JSONResponse(envelope([cancellation_body(engine, r) for r in records]))
