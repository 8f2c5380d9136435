"""The devserver's MCP endpoint (`/mcp`, streamable HTTP, JSON responses), official `mcp` package.

Same tool names and argument spellings as the real dev server
(infra/devserver/docs/rest-api.md#mcp): `send_event`,
`list_functions`, `invoke_function`, `get_run_status`, `poll_run_status`, `get_run`, `list_runs`,
`rerun`, `cancel_run`, the doc tools `grep_docs`, `read_doc`, `list_docs` (over this project's
README.md and docs/), and the other v2 read tools (`health`, `get_run_trace`, `get_event_runs`,
`get_apps`, `get_app`, `get_function`, `list_function_runs`). Every engine tool is one or a few
REST calls through the engine client (mcp_tools.py), so the tools behave exactly like the REST API.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from engine_client import AsyncEngineClient
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field

from devserver.dashboard.docs import DocError, DocIndex
from devserver.dashboard.engine_extras import PendingLookup
from devserver.dashboard.settings import DashboardSettings
from devserver.mcp_tools import EngineTools

SERVER_NAME = "inngest-dev"
SERVER_VERSION = "v1.0.0"
INSTRUCTIONS = (
    "Inngest-compatible dev server (Nerve). Send events, inspect and poll runs, invoke, "
    "cancel and rerun functions, and search the project's documentation."
)

# Tool name -> description, in the order the server lists them (methods of EngineTools).
ENGINE_TOOLS = {
    "send_event": "Send an event to the dev server; returns its id and the runs it triggered.",
    "get_run_status": "Status, steps and output of one run.",
    "poll_run_status": "Poll runs until all finished or the timeout (s) passes.",
    "get_run": "One run (v2 GET /runs/{run_id}).",
    "list_function_runs": "Runs of one function (v2).",
    "get_event_runs": "Runs triggered by one event (v2 GET /events/{event_id}/runs).",
    "get_run_trace": "Trace (steps, attempts, timings) of one run.",
    "rerun": "Rerun a run: a fresh run from the top, or from a step (from_step).",
    "cancel_run": "Cancel one run (in-flight steps finish; it never resumes).",
    "list_functions": "Functions of an app (v2), with triggers and configuration.",
    "get_function": "One function of an app (v2).",
    "get_apps": "Synced apps (v2 GET /apps).",
    "get_app": "One synced app.",
    "invoke_function": "Invoke a function asynchronously (v2); cron functions too.",
    "health": "Health of the dev server.",
}
LIST_RUNS_DESCRIPTION = (
    "Runs, newest first (v2 GET /runs); filters status, app_id, function_id, from."
)
# `list_runs` takes `from`, which no Python parameter can be called: an explicit signature.
LIST_RUNS_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "include_output": (bool, False),
    "cursor": (str | None, None),
    "limit": (int | None, None),
    "from_": (Annotated[str | None, Field(alias="from")], None),
    "until": (str | None, None),
    "time_field": (str | None, None),
    "status": (list[str] | None, None),
    "app_id": (list[str] | None, None),
    "function_id": (list[str] | None, None),
    "is_deferred": (bool | None, None),
    "order": (str | None, None),
}


def _with_signature(
    fn: Callable[..., Awaitable[Any]], params: dict[str, tuple[Any, Any]]
) -> Callable[..., Awaitable[Any]]:
    """A `**kwargs` tool with an explicit signature (for argument names like `from`)."""

    async def tool(**kwargs: Any) -> Any:
        return await fn(**kwargs)

    tool.__name__ = fn.__name__
    tool.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)
            for name, (ann, default) in params.items()
        ]
    )
    return tool


class DocTools:
    """`grep_docs`, `read_doc`, `list_docs` over the project's documentation."""

    def __init__(self, docs: DocIndex) -> None:
        self.docs = docs

    async def grep_docs(self, pattern: str, limit: int = 10) -> dict[str, Any]:
        try:
            return self.docs.grep_docs(pattern, limit)
        except DocError as exc:
            raise ToolError(str(exc)) from None

    async def read_doc(self, path: str) -> dict[str, Any]:
        try:
            return self.docs.read_doc(path)
        except DocError as exc:
            raise ToolError(str(exc)) from None

    async def list_docs(self) -> dict[str, Any]:
        return self.docs.list_docs()


DOC_TOOLS = {
    "grep_docs": "Search the project's documentation with a regular expression.",
    "read_doc": "Read one documentation file (a path from list_docs).",
    "list_docs": "The project's documentation, by category.",
}


def build_mcp(
    client: AsyncEngineClient,
    settings: DashboardSettings,
    pending_lookup: PendingLookup | None = None,
) -> MCPServer[Any]:
    """The MCP server: the engine tools on `client`, the doc tools on the project's docs."""
    server: MCPServer[Any] = MCPServer(
        SERVER_NAME, version=SERVER_VERSION, instructions=INSTRUCTIONS
    )
    engine = EngineTools(client, pending_lookup)
    for name, description in ENGINE_TOOLS.items():
        server.add_tool(getattr(engine, name), name=name, description=description)
    list_runs = _with_signature(engine.list_runs, LIST_RUNS_PARAMETERS)
    server.add_tool(list_runs, name="list_runs", description=LIST_RUNS_DESCRIPTION)
    docs = DocTools(DocIndex(settings.project_root, settings.extra_docs_dirs))
    for name, description in DOC_TOOLS.items():
        server.add_tool(getattr(docs, name), name=name, description=description)
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
