"""Devserver-only introspection of flow control (not part of Inngest's API).

    GET /v2/apps/{app_id}/functions/{function_id}/flow   (also under /api/v2)

    {"data": {"function_id": "<slug>",
              "queued_runs": runs not started yet (status Scheduled),
              "queued_jobs": due SDK calls waiting for a slot (concurrency / throttle),
              "running": SDK calls in flight,
              "concurrency_keys": {"<scope>:<scope id>:<key value>": in-flight calls},
              "waiting": {"<run id>": why its next SDK call waits (concurrency / throttle)},
              "debouncing": [debounce keys with a buffered event],
              "open_batches": {"<batch key>": events buffered},
              "singleton_locks": {"<singleton key>": "<run id>"}}}

Skipped and cancelled runs carry their reason in the normal run routes (`reason`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from devserver import store as t
from devserver.api_rest import require_key
from devserver.util import now_ms

router = APIRouter()

CALL_KINDS = ("start", "discovery", "step", "ai")


@router.get("/apps/{app_id}/functions/{function_id}/flow")
async def function_flow(app_id: str, function_id: str, request: Request) -> JSONResponse:
    await require_key(request)
    engine: Any = request.app.state.engine
    from devserver.api_v2 import find_function
    from devserver.views import v2_error

    fn = find_function(engine, app_id, function_id)
    if fn is None:
        return v2_error(404, "not_found", "Function not found")
    queued_runs = await engine.store.fetch_one(
        select(func.count())
        .select_from(t.runs)
        .where(t.runs.c.function_slug == fn.slug, t.runs.c.status == "Scheduled")
    )
    due_jobs = await engine.store.fetch_one(
        select(func.count())
        .select_from(t.jobs)
        .where(
            t.jobs.c.function_slug == fn.slug,
            t.jobs.c.kind.in_(CALL_KINDS),
            t.jobs.c.run_at <= now_ms(),
        )
    )
    describe = getattr(engine.flow, "describe", None)
    details: dict[str, Any] = describe(fn.slug) if describe is not None else {"running": 0}
    running = int(details.get("running", 0))
    data = {
        "function_id": fn.slug,
        "queued_runs": int(queued_runs[0]) if queued_runs else 0,
        "queued_jobs": max(0, (int(due_jobs[0]) if due_jobs else 0) - running),
        **details,
    }
    from devserver.views import v2_envelope

    return JSONResponse(v2_envelope(data))
