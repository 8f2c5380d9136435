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

from devserver.api_rest import engine_of, require_key
from devserver.api_v2 import find_function
from devserver.util import now_ms
from devserver.views import v2_envelope, v2_error

router = APIRouter()

CALL_KINDS = ("start", "discovery", "step", "ai")


@router.get("/apps/{app_id}/functions/{function_id}/flow")
async def function_flow(app_id: str, function_id: str, request: Request) -> JSONResponse:
    await require_key(request)
    engine = engine_of(request)
    fn = find_function(engine, app_id, function_id)
    if fn is None:
        return v2_error(404, "not_found", "Function not found")
    queued_runs = await engine.store.runs.count_scheduled(fn.slug)
    due_jobs = await engine.store.jobs.count_due(fn.slug, CALL_KINDS, now_ms())
    describe = getattr(engine.flow, "describe", None)
    details: dict[str, Any] = describe(fn.slug) if describe is not None else {"running": 0}
    running = int(details.get("running", 0))
    data = {
        "function_id": fn.slug,
        "queued_runs": queued_runs,
        "queued_jobs": max(0, due_jobs - running),
        **details,
    }
    return JSONResponse(v2_envelope(data))
