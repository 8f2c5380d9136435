"""A small local fake of the engine's public REST routes (protocol doc §8), served over real HTTP.

It records what the CLI sent so tests assert on the requests a real server would receive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from nerve_cli.testing import serve_asgi


@dataclass
class FakeEngine:
    events: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    event_runs: dict[str, list[str]] = field(default_factory=dict)
    reruns: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancellations: list[dict[str, Any]] = field(default_factory=list)
    run_queries: list[list[tuple[str, str]]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    invocations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    event_keys: list[str] = field(default_factory=list)
    base_url: str = ""

    def add_run(self, run_id: str, function: str, status: str, started: str) -> None:
        self.runs[run_id] = {
            "run_id": run_id,
            "function_slug": function,
            "status": status,
            "run_started_at": started,
            "ended_at": None,
            "output": None,
        }


def build_app(fake: FakeEngine) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record_auth(request: Request, call_next: Any) -> Any:
        fake.auth_headers.append(request.headers.get("authorization"))
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": 200, "message": "OK"}

    @app.post("/e/{key}")
    async def ingest(key: str, request: Request) -> Any:
        fake.event_keys.append(key)
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        ids = []
        for item in items:
            internal = f"01INTERNAL{len(fake.events):06d}"
            fake.events.append({**item, "internal_id": internal})
            ids.append(internal)
        return {"ids": ids, "status": 200}

    @app.get("/v1/events")
    async def list_events(name: str | None = None) -> Any:
        data = [e for e in fake.events if name is None or e["name"] == name]
        return {"data": data, "metadata": {}}

    @app.get("/v2/events/{internal_id}/runs")
    async def runs_for_event(internal_id: str) -> Any:
        ids = fake.event_runs.get(internal_id, [])
        return {"data": [fake.runs[i] for i in ids], "metadata": {}}

    @app.get("/v1/runs/{run_id}")
    async def get_run(run_id: str) -> Any:
        if run_id not in fake.runs:
            return JSONResponse({"error": "Unable to load function run", "status": 500}, 500)
        return {"data": fake.runs[run_id], "metadata": {}}

    @app.delete("/v1/runs/{run_id}")
    async def cancel_run(run_id: str) -> Any:
        if run_id not in fake.runs:
            return JSONResponse({"error": "run not found", "status": 404}, 404)
        fake.cancelled.append(run_id)
        fake.runs[run_id]["status"] = "Cancelled"
        return Response(status_code=200)

    @app.post("/v1/cancellations")
    async def bulk_cancel(request: Request) -> Any:
        body = await request.json()
        if "started_before" not in body:
            return JSONResponse({"error": "started_before is required", "status": 400}, 400)
        fake.cancellations.append(body)
        return {"data": {"id": "can_1", **body}, "metadata": {}}

    @app.get("/v2/runs")
    async def list_runs(request: Request) -> Any:
        query = list(request.query_params.multi_items())
        fake.run_queries.append(query)
        wanted_fn = request.query_params.get("function_id")
        statuses = (
            (request.query_params.get("status") or "").split(",")
            if request.query_params.get("status")
            else []
        )
        data = [
            r
            for r in fake.runs.values()
            if (wanted_fn is None or r["function_slug"] == wanted_fn)
            and (not statuses or r["status"] in statuses)
        ]
        return {"data": data, "metadata": {}, "page": {"has_more": False, "cursor": None}}

    @app.get("/v2/runs/{run_id}/trace")
    async def trace(run_id: str) -> Any:
        return {
            "data": {
                "name": "run",
                "status": fake.runs[run_id]["status"],
                "children": [
                    {"name": "audit-received", "step_id": "audit-received", "status": "Completed"},
                    {"name": "run-agent", "step_id": "run-agent", "status": "Failed"},
                ],
            }
        }

    @app.post("/v2/runs/{run_id}/rerun")
    async def rerun(run_id: str, request: Request) -> Any:
        body = await request.json()
        fake.reruns.append((run_id, body))
        new_id = f"{run_id}-rerun{len(fake.reruns)}"
        fake.add_run(new_id, fake.runs[run_id]["function_slug"], "Running", "2026-01-01T00:00:00Z")
        return {"data": {"run_id": new_id}, "metadata": {}}

    @app.post("/v2/apps/{app_id}/functions/{function_id}/invoke")
    async def invoke(app_id: str, function_id: str, request: Request) -> Any:
        if function_id != "daily-health-check":
            return JSONResponse({"error": "function not found", "status": 404}, 404)
        fake.invocations.append((app_id, function_id, await request.json()))
        return {"data": {"event_id": "01INVOKE", "function_id": f"{app_id}-{function_id}"}}

    return app


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    fake = FakeEngine()
    with serve_asgi(build_app(fake)) as url:
        fake.base_url = url
        yield fake
