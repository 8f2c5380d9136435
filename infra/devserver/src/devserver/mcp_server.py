"""The devserver's MCP endpoint (`/mcp`, streamable HTTP, JSON responses), official `mcp` package.

Same tool names and argument spellings as the real dev server
(infra/devserver/docs/rest-api.md#mcp): `send_event`,
`list_functions`, `invoke_function`, `get_run_status`, `poll_run_status`, `get_run`, `list_runs`,
`rerun`, `cancel_run`, the doc tools `grep_docs`, `read_doc`, `list_docs` (over this project's
README.md and docs/), and the other v2 read tools (`health`, `get_run_trace`, `get_event_runs`,
`get_apps`, `get_app`, `get_function`, `list_function_runs`). Every tool is one or a few REST
calls through `EngineClient`, so the tools behave exactly like the REST API.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field

from devserver.dashboard.client import EngineClient, EngineError
from devserver.dashboard.docs import DocError, DocIndex
from devserver.dashboard.engine_extras import PendingLookup, with_pending
from devserver.dashboard.settings import DashboardSettings
from devserver.dashboard.views import error_parts, pick, run_row, step_rows, to_datetime

SERVER_NAME = "inngest-dev"
SERVER_VERSION = "v1.0.0"
FINAL = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})
# The real tool sleeps 3 ticks (450 ms) before reading the runs; runs are created asynchronously,
# so poll instead: stop as soon as the event's runs exist, give up (no match) after this long.
SEND_EVENT_WAIT_S = 2.0


def _iso(value: Any) -> str | None:
    moment = to_datetime(value)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


async def _runs_when_created(client: EngineClient, event_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SEND_EVENT_WAIT_S
    while True:
        runs = await client.event_runs(event_id)
        if runs or time.monotonic() >= deadline:
            return runs
        await asyncio.sleep(0.05)


def _engine_call_error(exc: EngineError) -> ToolError:
    return ToolError(f"engine answered {exc.status}: {exc.message}")


def _with_signature(fn: Callable[..., Any], **params: Any) -> Callable[..., Any]:
    """Give a `**kwargs` tool an explicit signature (for argument names like `from`)."""
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)
            for name, (ann, default) in params.items()
        ]
    )
    return fn


def build_mcp(
    client: EngineClient,
    settings: DashboardSettings,
    pending_lookup: PendingLookup | None = None,
) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=(
            "Inngest-compatible dev server (Nerve). Send events, inspect and poll runs, invoke, "
            "cancel and rerun functions, and search the project's documentation."
        ),
    )
    docs = DocIndex(settings.project_root, settings.extra_docs_dirs)

    async def run_status(run_id: str) -> dict[str, Any]:
        try:
            run_raw = await client.get_run(run_id, include_output=True)
            trace = await client.get_trace(run_id)
            jobs = await client.run_jobs(run_id)
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        run = run_row(run_raw)
        if not run.final:
            trace = await with_pending(trace, run_id, pending_lookup)
        event_name = None
        if run.event_id:
            try:
                event_name = (await client.get_event(run.event_id)).get("name")
            except EngineError:
                event_name = None
        steps = []
        for step in step_rows(trace, jobs=jobs, run_final=run.final):
            entry: dict[str, Any] = {
                "stepName": step.name,
                "stepId": step.step_id,
                "status": step.status,
                "startedAt": _iso(step.started_at),
                "attempt": step.attempts,
            }
            if step.error:
                name, message, _ = error_parts(step.error)
                entry["error"] = f"{name}: {message}"
            steps.append(entry)
        result: dict[str, Any] = {
            "runId": run.run_id,
            "functionName": run.function,
            "status": run.status,
            "startedAt": _iso(run.started_at or run.queued_at),
            "eventId": run.event_id,
            "steps": steps,
        }
        if run.ended_at:
            result["endedAt"] = _iso(run.ended_at)
        if event_name:
            result["eventName"] = event_name
        if run.output is not None and run.status == "Completed":
            result["output"] = run.output
        if run.status == "Failed":
            name, message, _ = error_parts(run.error if run.error is not None else run.output)
            result["error"] = f"{name}: {message}"
        return result

    @server.tool(
        description="Send an event to the dev server; returns its id and the runs it triggered."
    )
    async def send_event(
        name: str,
        data: Any = None,
        user: Any = None,
        eventIdSeed: str | None = None,
    ) -> dict[str, Any]:
        if not name.strip():
            raise ToolError("name is required")
        event: dict[str, Any] = {"name": name, "data": data if isinstance(data, dict) else {}}
        if data is not None and not isinstance(data, dict):
            event["data"] = {"value": data}
        if user is not None:
            event["user"] = user if isinstance(user, dict) else {"id": user}
        if eventIdSeed:
            event["id"] = eventIdSeed
        try:
            ids = await client.send_events([event])
            runs = await _runs_when_created(client, ids[0]) if ids else []
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        run_ids = [run_row(r).run_id for r in runs]
        return {
            "eventId": ids[0] if ids else "",
            "runIds": run_ids,
            "status": "accepted",
            "message": f"Event {name} accepted; {len(run_ids)} run(s) triggered",
        }

    @server.tool(description="Status, steps and output of one run.")
    async def get_run_status(runId: str) -> dict[str, Any]:
        return await run_status(runId)

    @server.tool(description="Poll runs until all finished or the timeout (s) passes.")
    async def poll_run_status(
        runIds: list[str],
        timeout: float = 30,
        pollInterval: int = 1000,
    ) -> dict[str, Any]:
        if not runIds:
            raise ToolError("runIds must name at least one run")
        deadline = time.monotonic() + max(0.0, float(timeout))
        interval = max(0.05, pollInterval / 1000)
        while True:
            statuses = [await run_status(run_id) for run_id in runIds]
            done = all(s["status"] in FINAL for s in statuses)
            if done or time.monotonic() >= deadline:
                break
            await asyncio.sleep(interval)
        return {
            "runs": statuses,
            "completed": sum(1 for s in statuses if s["status"] == "Completed"),
            "running": sum(1 for s in statuses if s["status"] not in FINAL),
            "failed": sum(1 for s in statuses if s["status"] == "Failed"),
        }

    @server.tool(description="One run (v2 GET /runs/{run_id}).")
    async def get_run(run_id: str, include_output: bool = False) -> dict[str, Any]:
        try:
            return {"data": await client.get_run(run_id, include_output=include_output)}
        except EngineError as exc:
            raise _engine_call_error(exc) from None

    async def list_runs(**kwargs: Any) -> dict[str, Any]:
        try:
            answer = await client.list_runs(
                status=kwargs.get("status") or None,
                app_id=kwargs.get("app_id") or None,
                function_id=kwargs.get("function_id") or None,
                from_=kwargs.get("from"),
                until=kwargs.get("until"),
                limit=int(kwargs.get("limit") or 40),
                cursor=kwargs.get("cursor"),
                include_output=bool(kwargs.get("include_output")),
            )
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        runs = list(answer["data"])  # the engine applied from / until
        if str(kwargs.get("order") or "").lower() == "asc":
            runs = list(reversed(runs))
        return {"data": runs, "page": answer["page"]}

    server.add_tool(
        _with_signature(
            list_runs,
            include_output=(bool, False),
            cursor=(str | None, None),
            limit=(int | None, None),
            from_=(Annotated[str | None, Field(alias="from")], None),
            until=(str | None, None),
            time_field=(str | None, None),
            status=(list[str] | None, None),
            app_id=(list[str] | None, None),
            function_id=(list[str] | None, None),
            is_deferred=(bool | None, None),
            order=(str | None, None),
        ),
        name="list_runs",
        description="Runs, newest first (v2 GET /runs); filters status, app_id, function_id, from.",
    )

    @server.tool(description="Runs of one function (v2).")
    async def list_function_runs(
        app_id: str, function_id: str, limit: int = 40, include_output: bool = False
    ) -> dict[str, Any]:
        return await list_runs(
            app_id=[app_id], function_id=[function_id], limit=limit, include_output=include_output
        )

    @server.tool(description="Runs triggered by one event (v2 GET /events/{event_id}/runs).")
    async def get_event_runs(event_id: str) -> dict[str, Any]:
        try:
            return {"data": await client.event_runs(event_id)}
        except EngineError as exc:
            raise _engine_call_error(exc) from None

    @server.tool(description="Trace (steps, attempts, timings) of one run.")
    async def get_run_trace(run_id: str, include_output: bool = False) -> dict[str, Any]:
        try:
            return {"data": await client.get_trace(run_id)}
        except EngineError as exc:
            raise _engine_call_error(exc) from None

    @server.tool(description="Rerun a run: a fresh run from the top, or from a step (from_step).")
    async def rerun(run_id: str, from_step: dict[str, Any] | None = None) -> dict[str, Any]:
        if from_step is not None and not (from_step.get("stepId") or from_step.get("step_id")):
            raise ToolError("from_step needs a stepId")
        try:
            result = await client.rerun(run_id, from_step=from_step)
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        return {"data": result}

    @server.tool(description="Cancel one run (in-flight steps finish; it never resumes).")
    async def cancel_run(run_id: str) -> dict[str, Any]:
        try:
            result = await client.cancel_run(run_id)
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        return {"data": result if result is not None else {"runId": run_id}}

    @server.tool(description="Functions of an app (v2), with triggers and configuration.")
    async def list_functions(
        app_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        try:
            functions = await client.v2_app_functions(app_id)
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        return {"data": functions[: limit or None]}

    @server.tool(description="One function of an app (v2).")
    async def get_function(app_id: str, function_id: str) -> dict[str, Any]:
        functions = (await list_functions(app_id))["data"]
        for function in functions:
            ids = {
                str(pick(function, k, default="")) for k in ("id", "slug", "name", "function_id")
            }
            if function_id in ids or f"{app_id}-{function_id}" in ids:
                return {"data": function}
        raise ToolError(f"app {app_id!r} has no function {function_id!r}")

    @server.tool(description="Synced apps (v2 GET /apps).")
    async def get_apps(cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
        try:
            return {"data": (await client.list_apps())[: limit or None]}
        except EngineError as exc:
            raise _engine_call_error(exc) from None

    @server.tool(description="One synced app.")
    async def get_app(app_id: str) -> dict[str, Any]:
        for app in (await get_apps())["data"]:
            if app_id in {str(pick(app, k, default="")) for k in ("id", "name", "app_id")}:
                return {"data": app}
        raise ToolError(f"no app {app_id!r}")

    @server.tool(description="Invoke a function asynchronously (v2); cron functions too.")
    async def invoke_function(
        app_id: str,
        function_id: str,
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        try:
            result = await client.invoke(
                app_id, function_id, data or {}, idempotency_key=idempotency_key
            )
            return {"data": result}
        except EngineError as exc:
            raise _engine_call_error(exc) from None

    @server.tool(description="Health of the dev server.")
    async def health() -> dict[str, Any]:
        try:
            answer = await client.health()
        except EngineError as exc:
            raise _engine_call_error(exc) from None
        return answer if isinstance(answer, dict) else {"status": answer}

    @server.tool(description="Search the project's documentation with a regular expression.")
    async def grep_docs(pattern: str, limit: int = 10) -> dict[str, Any]:
        try:
            return docs.grep_docs(pattern, limit)
        except DocError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description="Read one documentation file (a path from list_docs).")
    async def read_doc(path: str) -> dict[str, Any]:
        try:
            return docs.read_doc(path)
        except DocError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description="The project's documentation, by category.")
    async def list_docs() -> dict[str, Any]:
        return docs.list_docs()

    return server


def transport_security() -> TransportSecuritySettings:
    """DNS-rebinding protection: local Host/Origin only (plus DEVSERVER_MCP_ALLOWED_HOSTS)."""
    extra = [h.strip() for h in os.environ.get("DEVSERVER_MCP_ALLOWED_HOSTS", "").split(",")]
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *[h for h in extra if h]]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )


def tool_result_json(result: Any) -> Any:
    """Helper for clients/tests: the JSON a tool returned (structured content or text)."""
    structured = getattr(result, "structured_content", None) or getattr(
        result, "structuredContent", None
    )
    if structured is not None:
        return structured.get("result", structured) if len(structured) == 1 else structured
    for block in getattr(result, "content", []) or []:
        text = getattr(block, "text", None)
        if text is not None:
            return json.loads(text)
    return None
