"""`--signing-key` / `--event-key`: behaves like `inngest start` (server kind cloud)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.testing import (
    DevServerProcess,
    EngineHandle,
    make_client,
    send_events,
    serve_app,
    start_devserver,
    sync_app,
    wait_for_run,
)

pytestmark = pytest.mark.devserver_only

SIGNING_KEY = "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff"
EVENT_KEY = "evkey-123"


@pytest.fixture(scope="module")
def cloud_server() -> Iterator[DevServerProcess]:
    server = start_devserver(
        "--in-memory",
        "--no-discovery",
        "--no-poll",
        "--retry-interval",
        "1",
        "--signing-key",
        SIGNING_KEY,
        "--event-key",
        EVENT_KEY,
    )
    try:
        yield server
    finally:
        server.stop()


async def test_cloud_mode_signs_calls_and_enforces_keys(cloud_server: DevServerProcess) -> None:
    engine = EngineHandle(cloud_server.base_url, event_key=EVENT_KEY, signing_key=SIGNING_KEY)
    client = make_client(engine, "cloud-app")

    @client.create_function(fn_id="signed", trigger=inngest.TriggerEvent(event="cloud/go"))
    async def signed(ctx: inngest.Context) -> Any:
        async def step() -> int:
            return 41

        return await ctx.step.run("s", step) + 1

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [signed])
    with serve_app(app) as base:
        await sync_app(engine, base + "/api/inngest")  # SDK authenticates with the hashed key
        [event_id] = await send_events(engine, [{"name": "cloud/go", "data": {}}])
        # the SDK (cloud mode) verifies every call's signature, so completion proves signing
        run = await wait_for_run(engine, event_id, timeout=15)
    assert run["output"] == 42
    async with httpx.AsyncClient(base_url=cloud_server.base_url) as http:
        wrong_key = await http.post("/e/not-the-key", json={"name": "cloud/go"})
        assert wrong_key.status_code == 401
        assert wrong_key.json()["error"] == "Event key not found"
        unauthenticated = await http.get(f"/v1/runs/{run['run_id']}")
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["x-inngest-server-kind"] == "cloud"
        register = await http.post("/fn/register", json={"appname": "intruder", "functions": []})
        assert register.status_code == 401
