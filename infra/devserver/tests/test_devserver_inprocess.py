"""Devserver-only behaviour checked against an in-process server: -u sync on start, cron ticks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.config import Settings
from devserver.engine import Engine
from devserver.server import create_app
from devserver.testing import EngineHandle, make_client, serve_app
from engine_client import free_port

pytestmark = pytest.mark.devserver_only


def cron_app(engine: EngineHandle) -> fastapi.FastAPI:
    client = make_client(engine, "cron-app")

    @client.create_function(
        fn_id="nightly", trigger=inngest.TriggerCron(cron="TZ=Europe/Paris 0 3 * * *")
    )
    async def nightly(ctx: inngest.Context) -> Any:
        return {"event": ctx.event.name, "cron": ctx.event.data["cron"]}

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [nightly])
    return app


async def poll_json(url: str, predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    body: Any = None
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            response = await http.get(url)
            if response.status_code == 200:
                body = response.json()
                if predicate(body):
                    return body
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url}: last body {body}")


async def test_sdk_urls_are_synced_on_start_and_cron_ticks_run(tmp_path) -> None:
    port = free_port()
    handle = EngineHandle(base_url=f"http://127.0.0.1:{port}")
    with serve_app(cron_app(handle)) as app_base:
        settings = Settings(
            port=port,
            sdk_urls=[app_base + "/api/inngest"],
            poll=True,
            poll_interval=0.5,
            in_memory=True,
            retry_interval=1,
        )
        server = create_app(settings)
        with serve_app(server, port=port):
            functions = await poll_json(
                f"{handle.base_url}/v1/apps/cron-app/functions", lambda body: len(body) == 1
            )
            assert functions[0]["id"] == "cron-app-nightly"
            engine: Engine = server.app.state.engine  # type: ignore[attr-defined]
            tick = int(time.time() * 1000)
            fired = asyncio.run_coroutine_threadsafe(
                engine.cron.fire("cron-app-nightly", "TZ=Europe/Paris 0 3 * * *", tick),
                engine.loop,
            )
            fired.result(10)
            runs = await poll_json(
                f"{handle.base_url}/v2/apps/cron-app/functions/nightly/runs",
                lambda body: body.get("data") and body["data"][0]["status"] == "COMPLETED",
            )
            run = runs["data"][0]
            detail = await poll_json(f"{handle.base_url}/v1/runs/{run['id']}", lambda body: True)
    assert detail["data"]["output"] == {
        "event": "inngest/scheduled.timer",
        "cron": "TZ=Europe/Paris 0 3 * * *",
    }
    assert detail["data"]["cron"] == "TZ=Europe/Paris 0 3 * * *"
    assert run["trigger"]["cronSchedule"] == "TZ=Europe/Paris 0 3 * * *"
