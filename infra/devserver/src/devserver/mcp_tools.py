"""The MCP tools that drive the engine, each one or a few REST calls through the engine client.

Same names, argument spellings and answers as the real dev server's tools
(infra/devserver/docs/rest-api.md#mcp): runs as the v2 API gives them (`{"data": ...}`), a run's
status in the dashboard's spellings (`Completed`, step rows from the trace). An engine error
becomes a tool error naming the status and the engine's own words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from engine_client import AsyncEngineClient, EngineError, RunSummary
from mcp.server.mcpserver.exceptions import ToolError

from devserver.dashboard.engine_extras import PendingLookup, with_pending
from devserver.dashboard.steps_view import StepRow, step_rows
from devserver.dashboard.views import RunRow, error_parts, pick, run_row, to_datetime

T = TypeVar("T")

FINAL = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})
# The real tool sleeps 3 ticks (450 ms) before reading the runs; runs are created asynchronously,
# so poll instead: stop as soon as the event's runs exist, give up (no match) after this long.
SEND_EVENT_WAIT_S = 2.0


async def engine_call(call: Awaitable[T]) -> T:
    """The call's answer; an engine error as the tool error the MCP client is shown."""
    try:
        return await call
    except EngineError as exc:
        raise ToolError(f"engine answered {exc.status}: {exc.reason}") from None


def iso(value: Any) -> str | None:
    moment = to_datetime(value)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def step_entry(step: StepRow) -> dict[str, Any]:
    """One step of `get_run_status`."""
    entry: dict[str, Any] = {
        "stepName": step.name,
        "stepId": step.step_id,
        "status": step.status,
        "startedAt": iso(step.started_at),
        "attempt": step.attempts,
    }
    if step.error:
        name, message, _ = error_parts(step.error)
        entry["error"] = f"{name}: {message}"
    return entry


def status_answer(
    run: RunRow, steps: list[dict[str, Any]], event_name: str | None
) -> dict[str, Any]:
    """`get_run_status`: the run in the real tool's shape."""
    result: dict[str, Any] = {
        "runId": run.run_id,
        "functionName": run.function,
        "status": run.status,
        "startedAt": iso(run.started_at or run.queued_at),
        "eventId": run.event_id,
        "steps": steps,
    }
    if run.ended_at:
        result["endedAt"] = iso(run.ended_at)
    if event_name:
        result["eventName"] = event_name
    if run.output is not None and run.status == "Completed":
        result["output"] = run.output
    if run.status == "Failed":
        name, message, _ = error_parts(run.error if run.error is not None else run.output)
        result["error"] = f"{name}: {message}"
    return result


def event_of(data: Any, user: Any, name: str, event_id: str | None) -> dict[str, Any]:
    """The event `send_event` sends: non-object data wrapped as `{"value": ...}`."""
    event: dict[str, Any] = {"name": name, "data": data if isinstance(data, dict) else {}}
    if data is not None and not isinstance(data, dict):
        event["data"] = {"value": data}
    if user is not None:
        event["user"] = user if isinstance(user, dict) else {"id": user}
    if event_id:
        event["id"] = event_id
    return event


class EngineTools:
    """The engine tools, bound to one engine client (and the devserver's pending lookup)."""

    def __init__(self, client: AsyncEngineClient, pending_lookup: PendingLookup | None) -> None:
        self.client = client
        self.pending_lookup = pending_lookup

    async def _runs_when_created(self, event_id: str) -> list[RunSummary]:
        deadline = time.monotonic() + SEND_EVENT_WAIT_S
        while True:
            runs = await self.client.event_runs(event_id)
            if runs or time.monotonic() >= deadline:
                return runs
            await asyncio.sleep(0.05)

    async def _event_name(self, event_id: str) -> str | None:
        if not event_id:
            return None
        try:
            name = (await self.client.get_event(event_id)).get("name")
        except EngineError:
            return None
        return str(name) if name else None

    async def send_event(
        self, name: str, data: Any = None, user: Any = None, eventIdSeed: str | None = None
    ) -> dict[str, Any]:
        if not name.strip():
            raise ToolError("name is required")
        event = event_of(data, user, name, eventIdSeed)
        ids = await engine_call(self.client.send_events([event]))
        runs = await engine_call(self._runs_when_created(ids[0])) if ids else []
        return {
            "eventId": ids[0] if ids else "",
            "runIds": [run.run_id for run in runs],
            "status": "accepted",
            "message": f"Event {name} accepted; {len(runs)} run(s) triggered",
        }

    async def get_run_status(self, runId: str) -> dict[str, Any]:
        found = await engine_call(self.client.get_run(runId, include_output=True))
        trace_found = await engine_call(self.client.run_trace(runId, include_output=True))
        jobs = await engine_call(self.client.extras.run_jobs(runId))
        run = run_row(found.raw)
        trace: dict[str, Any] = dict(trace_found.raw)
        if not run.final:
            trace = await with_pending(trace, runId, self.pending_lookup)
        steps = [step_entry(s) for s in step_rows(trace, jobs=jobs, run_final=run.final)]
        return status_answer(run, steps, await self._event_name(run.event_id))

    async def poll_run_status(
        self, runIds: list[str], timeout: float = 30, pollInterval: int = 1000
    ) -> dict[str, Any]:
        if not runIds:
            raise ToolError("runIds must name at least one run")
        deadline = time.monotonic() + max(0.0, float(timeout))
        interval = max(0.05, pollInterval / 1000)
        while True:
            statuses = [await self.get_run_status(run_id) for run_id in runIds]
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

    async def get_run(self, run_id: str, include_output: bool = False) -> dict[str, Any]:
        run = await engine_call(self.client.get_run(run_id, include_output=include_output))
        return {"data": dict(run.raw)}

    async def list_runs(self, **kwargs: Any) -> dict[str, Any]:
        """`**kwargs`: the real tool's argument names include `from` (see mcp_server)."""
        answer = await engine_call(
            self.client.runs_page(
                status=kwargs.get("status") or None,
                app_id=kwargs.get("app_id") or None,
                function_id=kwargs.get("function_id") or None,
                since=kwargs.get("from"),
                until=kwargs.get("until"),
                limit=int(kwargs.get("limit") or 40),
                cursor=kwargs.get("cursor"),
                include_output=bool(kwargs.get("include_output")),
            )
        )
        runs = [dict(run.raw) for run in answer.runs]  # the engine applied from / until
        if str(kwargs.get("order") or "").lower() == "asc":
            runs.reverse()
        return {"data": runs, "page": dict(answer.page.raw)}

    async def list_function_runs(
        self, app_id: str, function_id: str, limit: int = 40, include_output: bool = False
    ) -> dict[str, Any]:
        return await self.list_runs(
            app_id=[app_id], function_id=[function_id], limit=limit, include_output=include_output
        )

    async def get_event_runs(self, event_id: str) -> dict[str, Any]:
        runs = await engine_call(self.client.event_runs(event_id))
        return {"data": [dict(run.raw) for run in runs]}

    async def get_run_trace(self, run_id: str, include_output: bool = False) -> dict[str, Any]:
        trace = await engine_call(self.client.run_trace(run_id, include_output=True))
        return {"data": dict(trace.raw)}

    async def rerun(self, run_id: str, from_step: dict[str, Any] | None = None) -> dict[str, Any]:
        step_id = None
        if from_step is not None:
            step_id = from_step.get("stepId") or from_step.get("step_id")
            if not step_id:
                raise ToolError("from_step needs a stepId")
        step_input = from_step.get("input") if from_step else None
        new_id = await engine_call(
            self.client.rerun(run_id, from_step=step_id, step_input=step_input)
        )
        return {"data": {"runId": new_id}}

    async def cancel_run(self, run_id: str) -> dict[str, Any]:
        await engine_call(self.client.cancel_run(run_id))
        return {"data": {"runId": run_id}}

    async def list_functions(
        self, app_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        functions = await engine_call(self.client.list_function_records(app_id))
        return {"data": functions[: limit or None]}

    async def get_function(self, app_id: str, function_id: str) -> dict[str, Any]:
        for function in (await self.list_functions(app_id))["data"]:
            ids = {
                str(pick(function, k, default="")) for k in ("id", "slug", "name", "function_id")
            }
            if function_id in ids or f"{app_id}-{function_id}" in ids:
                return {"data": function}
        raise ToolError(f"app {app_id!r} has no function {function_id!r}")

    async def get_apps(self, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
        apps = await engine_call(self.client.list_app_records())
        return {"data": apps[: limit or None]}

    async def get_app(self, app_id: str) -> dict[str, Any]:
        for app in (await self.get_apps())["data"]:
            if app_id in {str(pick(app, k, default="")) for k in ("id", "name", "app_id")}:
                return {"data": app}
        raise ToolError(f"no app {app_id!r}")

    async def invoke_function(
        self,
        app_id: str,
        function_id: str,
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        invocation = await engine_call(
            self.client.invoke(app_id, function_id, data or {}, idempotency_key=idempotency_key)
        )
        return {"data": {"runId": invocation.run_id}}

    async def health(self) -> dict[str, Any]:
        answer = await engine_call(self.client.extras.health())
        return answer if isinstance(answer, dict) else {"status": answer}
