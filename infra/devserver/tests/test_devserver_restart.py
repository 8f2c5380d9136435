"""Durability: SIGKILL the devserver while runs sleep, wait and sit queued; start it again on the
same database; every run completes exactly once (devserver-only: it owns the process)."""

from __future__ import annotations

import asyncio
import datetime
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pytest
from devserver.testing import (
    EngineHandle,
    make_client,
    send_events,
    serve_app,
    start_devserver,
    sync_app,
    wait_for_run,
)
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.devserver_only

calls: Counter[str] = Counter()


def build(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(fn_id="sleepy", trigger=inngest.TriggerEvent(event="rs/sleep"))
    async def sleepy(ctx: inngest.Context) -> Any:
        async def before() -> str:
            calls["sleep:before"] += 1
            return "b"

        async def after() -> str:
            calls["sleep:after"] += 1
            return "a"

        await ctx.step.run("before", before)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=3))
        return [await ctx.step.run("after", after)]

    @client.create_function(fn_id="waity", trigger=inngest.TriggerEvent(event="rs/wait"))
    async def waity(ctx: inngest.Context) -> Any:
        found = await ctx.step.wait_for_event(
            "wait", event="rs/go", timeout=datetime.timedelta(seconds=60)
        )

        async def after() -> str:
            calls["wait:after"] += 1
            return "done"

        await ctx.step.run("after", after)
        return found.data["v"] if found else None

    @client.create_function(fn_id="queued", trigger=inngest.TriggerEvent(event="rs/queued"))
    async def queued(ctx: inngest.Context) -> Any:
        async def only() -> int:
            calls["queued:only"] += 1
            return 1

        return await ctx.step.run("only", only)

    return [sleepy, waity, queued]


def database_urls() -> Iterator[Any]:
    yield pytest.param("sqlite", id="sqlite")
    yield pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=list(database_urls()))
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/devserver.db"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set")
    import asyncpg

    url = make_url(base)
    name = f"devserver_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_runs_survive_sigkill_and_complete_exactly_once(database_url: str) -> None:
    calls.clear()
    server = start_devserver(
        "--database-url", database_url, "--no-discovery", "--no-poll", "--retry-interval", "1"
    )
    engine = EngineHandle(base_url=server.base_url)
    client = make_client(engine, "restart-app")
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build(client))
    try:
        with serve_app(app) as base:
            await sync_app(engine, base + "/api/inngest")
            future_ts = int((time.time() + 4) * 1000)
            sleep_id, wait_id, queued_id = await send_events(
                engine,
                [
                    {"name": "rs/sleep", "data": {}},
                    {"name": "rs/wait", "data": {}},
                    {"name": "rs/queued", "data": {}, "ts": future_ts},
                ],
            )
            await wait_for_run(engine, sleep_id, status={"Running"}, timeout=10)
            await wait_for_run(engine, wait_id, status={"Running"}, timeout=10)
            deadline = time.monotonic() + 10
            while calls["sleep:before"] == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the sleep and the wait are registered
            server.kill()
            server.start()  # same port, same database
            # If the wait was not registered before the kill, its call is replayed after the
            # restart: send until it is resumed (events before a wait are never matched).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await send_events(engine, [{"name": "rs/go", "data": {"v": 42}}])
                await asyncio.sleep(0.5)
                if calls["wait:after"]:
                    break
            sleep_run = await wait_for_run(engine, sleep_id, timeout=20)
            wait_run = await wait_for_run(engine, wait_id, timeout=20)
            queued_run = await wait_for_run(engine, queued_id, timeout=20)
            await asyncio.sleep(1.0)
    finally:
        server.stop()
    assert sleep_run["output"] == ["a"]
    assert wait_run["output"] == 42
    assert queued_run["output"] == 1
    assert calls == Counter(
        {"sleep:before": 1, "sleep:after": 1, "wait:after": 1, "queued:only": 1}
    )
