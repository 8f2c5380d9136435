"""Cancellation (single, bulk) and replay (rerun from the top, rerun from a step)."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections import Counter
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.testing import (
    EngineHandle,
    get_run,
    make_client,
    runs_for_event,
    send_events,
    serve_app,
    sync_app,
    wait_for_run,
    wait_for_run_id,
)

APP = "cancel-app"
calls: Counter[str] = Counter()


def build(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="cx/nap"))
    async def napper(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]
        await ctx.step.sleep("nap", datetime.timedelta(seconds=ctx.event.data.get("secs", 2)))

        async def woke() -> str:
            calls[f"{tag}:woke"] += 1
            return "woke"

        return await ctx.step.run("woke", woke)

    @client.create_function(fn_id="waiting", trigger=inngest.TriggerEvent(event="cx/wait"))
    async def waiting(ctx: inngest.Context) -> Any:
        got = await ctx.step.wait_for_event(
            "w", event="cx/go", timeout=datetime.timedelta(seconds=30)
        )
        calls[f"{ctx.event.data['tag']}:resumed"] += 1
        return got is not None

    @client.create_function(fn_id="busy", trigger=inngest.TriggerEvent(event="cx/busy"))
    async def busy(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]

        async def slow() -> str:
            calls[f"{tag}:slow-start"] += 1
            await asyncio.sleep(1.0)
            calls[f"{tag}:slow-end"] += 1
            return "slow"

        async def next_step() -> str:
            calls[f"{tag}:next"] += 1
            return "next"

        await ctx.step.run("slow", slow)
        return await ctx.step.run("next", next_step)

    @client.create_function(fn_id="abc", trigger=inngest.TriggerEvent(event="cx/abc"))
    async def abc(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]
        out = []
        for name in ("a", "b", "c"):

            async def body(name: str = name) -> str:
                calls[f"{tag}:{name}"] += 1
                return f"{name}{calls[f'{tag}:{name}']}"

            out.append(await ctx.step.run(name, body))
        return out

    return [napper, waiting, busy, abc]


@pytest.fixture(scope="module")
def app_url(inngest_engine: EngineHandle) -> Any:
    client = make_client(inngest_engine, APP)
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build(client))
    with serve_app(app) as base:
        asyncio.run(sync_app(inngest_engine, base + "/api/inngest"))
        yield base


async def started_run(engine: EngineHandle, event_id: str) -> dict[str, Any]:
    return await wait_for_run(engine, event_id, status={"Running"}, timeout=10)


async def test_cancel_sleeping_run_never_resumes(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "cx/nap", "data": {"tag": "n1"}}])
    run = await started_run(inngest_engine, event_id)
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(f"/v2/runs/{run['run_id']}/cancel")
    assert response.status_code == 200
    assert response.json()["data"] == {"runId": run["run_id"]}
    cancelled = await wait_for_run_id(inngest_engine, run["run_id"], status={"Cancelled"})
    assert cancelled["ended_at"] is not None
    await asyncio.sleep(2.5)
    assert calls["n1:woke"] == 0
    assert (await get_run(inngest_engine, run["run_id"]))["status"] == "Cancelled"
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        events = await http.get("/v1/events", params={"name": "inngest/function.cancelled"})
    assert run["run_id"] in {e["id"] for e in events.json()["data"]}


async def test_cancel_waiting_run_through_v2(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "cx/wait", "data": {"tag": "w1"}}])
    run = await started_run(inngest_engine, event_id)
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(f"/v2/runs/{run['run_id']}/cancel")
    assert response.status_code == 200
    await wait_for_run_id(inngest_engine, run["run_id"], status={"Cancelled"})
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        again = await http.post(f"/v2/runs/{run['run_id']}/cancel")
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "run_already_cancelled"
    await send_events(inngest_engine, [{"name": "cx/go", "data": {}}])
    await asyncio.sleep(0.8)
    assert calls["w1:resumed"] == 0


# DELETE /v1/runs/{id} is a devserver extra: the real server answers 404 for every run.
@pytest.mark.devserver_only
async def test_in_flight_step_finishes_but_run_stays_cancelled(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "cx/busy", "data": {"tag": "b1"}}])
    deadline = time.monotonic() + 10
    while calls["b1:slow-start"] == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    [run] = await runs_for_event(inngest_engine, event_id)
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        deleted = await http.delete(f"/v1/runs/{run['run_id']}")
    assert deleted.status_code == 200, deleted.text
    await asyncio.sleep(1.8)
    assert calls["b1:slow-end"] == 1  # the SDK call was not interrupted
    assert calls["b1:next"] == 0  # ... but nothing ran after it
    assert (await get_run(inngest_engine, run["run_id"]))["status"] == "Cancelled"


# Bulk cancel is a devserver extra: the real server answers 500 (its store is not wired).
@pytest.mark.devserver_only
async def test_bulk_cancel_by_function_time_range_and_expression(inngest_engine, app_url):
    ids = await send_events(
        inngest_engine,
        [{"name": "cx/nap", "data": {"tag": f"bulk-{g}", "group": g, "secs": 3}} for g in "aab"],
    )
    for event_id in ids:
        await started_run(inngest_engine, event_id)
    before = datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=10)
    await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(
            "/v1/cancellations",
            json={
                "app_id": APP,
                "function_id": f"{APP}-napper",  # the app-prefixed slug, as on v1
                "started_before": before.isoformat(),
                "if": "event.data.group == 'a'",
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["cancelled_count"] == 2
    for event_id in ids[:2]:
        await wait_for_run(inngest_engine, event_id, status={"Cancelled"}, timeout=5)
    await wait_for_run(inngest_engine, ids[2], timeout=10)
    assert calls["bulk-a:woke"] == 0 and calls["bulk-b:woke"] == 1


async def test_rerun_from_the_top_is_a_new_run(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "cx/abc", "data": {"tag": "r1"}}])
    first = await wait_for_run(inngest_engine, event_id, timeout=10)
    assert first["output"] == ["a1", "b1", "c1"]
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(f"/v2/runs/{first['run_id']}/rerun", json={})
    assert response.status_code == 200, response.text
    new_run_id = response.json()["data"]["runId"]
    rerun = await wait_for_run_id(inngest_engine, new_run_id)
    assert rerun["original_run_id"] == first["run_id"]
    assert rerun["output"] == ["a2", "b2", "c2"]


async def test_rerun_from_a_step_reuses_earlier_memos(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "cx/abc", "data": {"tag": "r2"}}])
    first = await wait_for_run(inngest_engine, event_id, timeout=10)
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(
            f"/v2/runs/{first['run_id']}/rerun", json={"fromStep": {"stepId": "b"}}
        )
    assert response.status_code == 200, response.text
    rerun = await wait_for_run_id(inngest_engine, response.json()["data"]["runId"])
    assert rerun["output"] == ["a1", "b2", "c2"]
    assert (calls["r2:a"], calls["r2:b"], calls["r2:c"]) == (1, 2, 2)


async def test_trace_lists_steps(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "cx/abc", "data": {"tag": "t1"}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=10)
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.get(
            f"/v2/runs/{run['run_id']}/trace", params={"includeOutput": "true"}
        )
    root = response.json()["data"]["rootSpan"]
    steps = [s for s in root["children"] if "stepId" in s]
    # The real server lists each step more than once (discovery and execution spans).
    assert list(dict.fromkeys(s["name"] for s in steps)) == ["a", "b", "c"]
    assert {(s["status"], s["stepOp"]) for s in steps} == {("COMPLETED", "RUN")}
    assert root["status"] == "COMPLETED"
    assert root["output"] == {"data": ["a1", "b1", "c1"]}
