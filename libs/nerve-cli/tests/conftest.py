"""A test double for the engine in the real Inngest server's REST dialect, for the CLI commands.

`fake_engine`: a small stateful stand-in served over real HTTP, answering in the shapes of the
recorded real answers (tests/fixtures/inngest-rest-recorded, on which the client itself is tested
in libs/engine-client/tests): v2 camelCase, upper-case statuses, `hasMore` paging, `errors`
bodies, v1 errors as HTTP 200, the v1 cancel routes failing as they do on the real server. It
records what the CLI sent, so tests assert on the requests a real server would receive.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from nerve_cli.testing import serve_asgi
from starlette.datastructures import QueryParams


def v2_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def v2_errors(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message}]}, status)


def drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    """Proto-JSON leaves out empty and false values."""
    return {k: v for k, v in value.items() if v not in (None, "", [], {}, False)}


def runs_query_error(params: QueryParams) -> JSONResponse | None:
    """The real server's refusals of a `GET /v2/runs` query."""
    if params.getlist("function_id") and not params.getlist("app_id"):
        return v2_errors(
            400, "invalid_field_format", "appId is required when filtering by functionId"
        )
    known = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
    if any(s.upper() not in known for s in params.getlist("status")):
        return v2_errors(400, "invalid_field_format", "invalid status")
    if int(params.get("limit") or 20) > 100:
        return v2_errors(400, "invalid_field_format", "Limit cannot exceed 100")
    return None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_matches(run: Mapping[str, Any], params: QueryParams) -> bool:
    """A run passes the query's app, function, status and queued-time filters."""
    apps, functions = params.getlist("app_id"), params.getlist("function_id")
    statuses = [s.upper() for s in params.getlist("status")]
    since, until = params.get("from"), params.get("until")
    return (
        (not apps or run["app_id"] in apps)
        and (not functions or run["function_id"] in functions)
        and (not statuses or run["status"] in statuses)
        and (not since or run["queued_at"] >= _moment(since))
        and (not until or run["queued_at"] <= _moment(until))
    )


@dataclass
class FakeEngine:
    events: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set)
    reruns: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    v1_cancel_calls: list[str] = field(default_factory=list)
    run_queries: list[list[tuple[str, str]]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    invocations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    event_keys: list[str] = field(default_factory=list)
    skipped_functions: set[str] = field(default_factory=set)
    signing_key: str | None = None
    base_url: str = ""
    _serial: int = 0

    def new_id(self, prefix: str = "01K") -> str:
        self._serial += 1
        return f"{prefix}{self._serial:023d}"[:26]

    def add_run(
        self,
        run_id: str,
        function: str,
        status: str,
        queued: str,
        *,
        event_ids: list[str] | None = None,
        steps: list[dict[str, Any]] | None = None,
        output: Any = None,
    ) -> dict[str, Any]:
        """`function` is `app/fn`; `status` a v2 status (`COMPLETED`)."""
        app_id, _, function_id = function.partition("/")
        self.apps.add(app_id)
        queued_at = datetime.fromisoformat(queued.replace("Z", "+00:00"))
        ended = status in ("COMPLETED", "FAILED", "CANCELLED")
        run = {
            "id": run_id,
            "app_id": app_id,
            "function_id": function_id,
            "status": status,
            "queued_at": queued_at,
            "started_at": queued_at + timedelta(milliseconds=5),
            "ended_at": queued_at + timedelta(seconds=1) if ended else None,
            "event_ids": event_ids or [self.new_id("01E")],
            "steps": steps or [],
            "output": output,
        }
        self.runs[run_id] = run
        return run

    def v2_run(self, run: Mapping[str, Any], *, output: bool = False) -> dict[str, Any]:
        ended = run["ended_at"]
        return drop_empty(
            {
                "app": {"id": run["app_id"]},
                "durationMs": str(int((ended - run["started_at"]).total_seconds() * 1000))
                if ended
                else None,
                "endedAt": v2_time(ended),
                "function": {"id": run["function_id"], "name": run["function_id"]},
                "id": run["id"],
                "output": run["output"] if output else None,
                "queuedAt": v2_time(run["queued_at"]),
                "startedAt": v2_time(run["started_at"]),
                "status": run["status"],
                "trigger": {"eventIds": run["event_ids"]},
            }
        )

    def runs_answer(self, params: QueryParams) -> Any:
        """`GET /v2/runs` as the real server answers it (its 400s included), one page."""
        refused = runs_query_error(params)
        if refused is not None:
            return refused
        limit = int(params.get("limit") or 20) or 20
        matching = [
            r
            for r in sorted(self.runs.values(), key=lambda r: r["queued_at"], reverse=True)
            if run_matches(r, params)
        ]
        cursor = params.get("cursor")
        offset = int(base64.b64decode(cursor).decode()) if cursor else 0
        page = matching[offset : offset + limit]
        page_info: dict[str, Any] = {"limit": limit}
        if offset + limit < len(matching):
            page_info["hasMore"] = True
            page_info["cursor"] = base64.b64encode(str(offset + limit).encode()).decode()
        return drop_empty(
            {"data": [self.v2_run(r) for r in page], "metadata": {}, "page": page_info}
        )

    def authorized(self, header: str | None) -> bool:
        if not self.signing_key:
            return True
        bare = self.signing_key.split("-")[-1]
        hashed = hashlib.sha256(bytes.fromhex(bare)).hexdigest()
        return header in (f"Bearer {hashed}", f"Bearer {bare}", f"Bearer {self.signing_key}")


def build_app(fake: FakeEngine) -> FastAPI:
    app = FastAPI()
    add_auth(app, fake)
    add_event_routes(app, fake)
    add_run_routes(app, fake)
    add_action_routes(app, fake)
    return app


def add_auth(app: FastAPI, fake: FakeEngine) -> None:
    """Every route but the event API wants the signing key when the fake has one."""

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Any:
        header = request.headers.get("authorization")
        fake.auth_headers.append(header)
        if not request.url.path.startswith("/e/") and not fake.authorized(header):
            return PlainTextResponse("Authentication failed\n", 401)
        return await call_next(request)


def add_event_routes(app: FastAPI, fake: FakeEngine) -> None:
    """The event API, v1 events, and v2 runs of an event."""

    @app.post("/e/{key}")
    async def ingest(key: str, request: Request) -> Any:
        fake.event_keys.append(key)
        body = await request.json()
        ids = []
        for item in body if isinstance(body, list) else [body]:
            internal = fake.new_id("01E")
            fake.events.append({"internal_id": internal, **item, "id": item.get("id") or internal})
            ids.append(internal)
        return PlainTextResponse(json.dumps({"ids": ids, "status": 200}))

    @app.get("/v1/events")
    async def list_events(name: str | None = None) -> Any:
        data = [e for e in reversed(fake.events) if name is None or e["name"] == name]
        return {"data": data, "metadata": {"fetched_at": v2_time(datetime.now(UTC))}}

    @app.get("/v1/events/{internal_id}")
    async def get_event(internal_id: str) -> Any:
        for event in fake.events:
            if event["internal_id"] == internal_id:
                return {"data": event, "metadata": {}}
        # v1 GET errors come back as HTTP 200; the body's status is the truth.
        return {"error": "Unable to load event", "data": None, "status": 404}

    @app.get("/v2/events/{internal_id}/runs")
    async def runs_for_event(internal_id: str, limit: int = 20) -> Any:
        if limit > 40:
            return v2_errors(400, "invalid_field_format", "Limit cannot exceed 40")
        data = [fake.v2_run(r) for r in fake.runs.values() if internal_id in r["event_ids"]]
        return drop_empty({"data": data, "metadata": {}, "page": {"limit": limit}})


def add_run_routes(app: FastAPI, fake: FakeEngine) -> None:
    """v2 run listing, one run, its trace."""

    @app.get("/v2/runs")
    async def list_runs(request: Request) -> Any:
        query = list(request.query_params.multi_items())
        fake.run_queries.append(query)
        return fake.runs_answer(request.query_params)

    @app.get("/v2/runs/{run_id}")
    async def get_run(run_id: str, include_output: bool = False) -> Any:
        if run_id not in fake.runs:
            return v2_errors(404, "not_found", "Run not found")
        return {"data": fake.v2_run(fake.runs[run_id], output=include_output), "metadata": {}}

    @app.get("/v2/runs/{run_id}/trace")
    async def trace(run_id: str) -> Any:
        if run_id not in fake.runs:
            return v2_errors(404, "not_found", "Run not found")
        run = fake.runs[run_id]
        children = [
            drop_empty(
                {
                    "id": f"span{index}",
                    "name": step["name"],
                    "status": step["status"],
                    "stepId": hashlib.sha1(step["name"].encode()).hexdigest(),
                    "stepOp": step.get("op", "RUN"),
                    "queuedAt": v2_time(run["queued_at"]),
                    "startedAt": v2_time(run["started_at"]),
                    "endedAt": v2_time(run["ended_at"]),
                }
            )
            for index, step in enumerate(run["steps"])
        ]
        root = drop_empty(
            {
                "id": "root",
                "name": "Run",
                "status": run["status"],
                "queuedAt": v2_time(run["queued_at"]),
                "children": children,
            }
        )
        return {"data": {"rootSpan": root, "runId": run_id}, "metadata": {}}


def add_action_routes(app: FastAPI, fake: FakeEngine) -> None:
    """Cancel (v2; the v1 routes fail as on the real server), rerun, invoke, apps."""

    @app.post("/v2/runs/{run_id}/cancel")
    async def cancel_run(run_id: str) -> Any:
        run = fake.runs.get(run_id)
        if run is None:
            return v2_errors(404, "not_found", "Run not found")
        if run["status"] == "CANCELLED":
            return v2_errors(409, "run_already_cancelled", "Run is already cancelled")
        if run["status"] in ("COMPLETED", "FAILED"):
            return v2_errors(409, "run_already_ended", "Cannot cancel an ended run")
        run["status"] = "CANCELLED"
        run["ended_at"] = datetime.now(UTC)
        fake.cancelled.append(run_id)
        return {"data": {"runId": run_id}, "metadata": {}}

    @app.delete("/v1/runs/{run_id}")
    async def v1_cancel(run_id: str) -> Any:
        fake.v1_cancel_calls.append(run_id)  # never works on the real server
        return JSONResponse({"error": "Unable to load function run", "status": 404}, 404)

    @app.post("/v1/cancellations")
    async def v1_bulk_cancel() -> Any:
        fake.v1_cancel_calls.append("bulk")
        return Response(status_code=500)

    @app.post("/v2/runs/{run_id}/rerun")
    async def rerun(run_id: str, request: Request) -> Any:
        if run_id not in fake.runs:
            return v2_errors(404, "not_found", "Run not found")
        body = await request.json() if await request.body() else {}
        fake.reruns.append((run_id, body))
        old = fake.runs[run_id]
        new_id = fake.new_id("01R")
        fake.add_run(
            new_id,
            f"{old['app_id']}/{old['function_id']}",
            "RUNNING",
            v2_time(datetime.now(UTC)) or "",
            event_ids=list(old["event_ids"]),
        )
        return {"data": {"runId": new_id}, "metadata": {}}

    @app.post("/v2/apps/{app_id}/functions/{function_id}/invoke")
    async def invoke(app_id: str, function_id: str, request: Request) -> Any:
        body = await request.json()
        if app_id not in fake.apps:
            return v2_errors(404, "not_found", "Function not found")
        if function_id in fake.skipped_functions:
            return v2_errors(
                422,
                "function_skipped",
                "Function invocation was skipped because the function is paused or draining.",
            )
        key = body.get("idempotencyKey")
        for *_, earlier in fake.invocations:
            if key and earlier.get("idempotencyKey") == key:
                return JSONResponse({"data": {"runId": earlier["run_id"]}, "metadata": {}}, 409)
        run = fake.add_run(
            fake.new_id("01I"),
            f"{app_id}/{function_id}",
            "QUEUED",
            v2_time(datetime.now(UTC)) or "",
        )
        fake.invocations.append((app_id, function_id, {**body, "run_id": run["id"]}))
        return {"data": {"runId": run["id"]}, "metadata": {}}

    @app.get("/v2/apps")
    async def apps() -> Any:
        data = [{"id": app_id, "name": app_id} for app_id in sorted(fake.apps)]
        return drop_empty({"data": data, "metadata": {}, "page": {"limit": 20}})


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    fake = FakeEngine()
    with serve_asgi(build_app(fake)) as url:
        fake.base_url = url
        yield fake
