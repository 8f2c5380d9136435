"""Fixtures for the MCP tests: a real inngest-py app on the session devserver."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.testing import EngineHandle, make_client, serve_app


def build_functions(client: inngest.Inngest, state: dict[str, Any]) -> list[Any]:
    @client.create_function(fn_id="mcp-add", trigger=inngest.TriggerEvent(event="mcp/add"))
    async def add(ctx: inngest.Context) -> dict[str, int]:
        async def compute() -> int:
            return int(str(ctx.event.data["a"])) + int(str(ctx.event.data["b"]))

        return {"sum": await ctx.step.run("add", compute)}

    @client.create_function(fn_id="mcp-sleeper", trigger=inngest.TriggerEvent(event="mcp/sleep"))
    async def sleeper(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(minutes=10))
        state["sleeper_woke"] = True
        return "woke"

    @client.create_function(
        fn_id="mcp-flaky", trigger=inngest.TriggerEvent(event="mcp/flaky"), retries=0
    )
    async def flaky(ctx: inngest.Context) -> str:
        async def send_reply() -> str:
            if not state.get("fixed"):
                raise RuntimeError("mail provider returned 503")
            return "sent"

        return await ctx.step.run("send-reply", send_reply)

    return [add, sleeper, flaky]


@pytest.fixture(scope="module")
def mcp_app(inngest_engine: EngineHandle) -> Iterator[dict[str, Any]]:
    """{"engine", "url" (the /mcp endpoint), "state"}; the app is synced before yielding."""
    if not inngest_engine.is_devserver:
        pytest.skip("these tests drive the devserver's own /mcp endpoint")
    state: dict[str, Any] = {}
    client = make_client(inngest_engine, "mcp-demo")
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build_functions(client, state))
    with serve_app(app) as base:
        response = httpx.put(base + "/api/inngest", timeout=30)
        assert response.status_code == 200, response.text
        yield {"engine": inngest_engine, "url": inngest_engine.base_url + "/mcp", "state": state}
