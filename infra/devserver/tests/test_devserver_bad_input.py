"""Bad input gets a 4xx JSON error naming the problem and never breaks the server or a run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.testing import (
    EngineHandle,
    make_client,
    send_events,
    serve_app,
    sync_app,
    wait_for_run,
)

APP = "bad-input"


def build(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(fn_id="huge", trigger=inngest.TriggerEvent(event="bad/huge"))
    async def huge(ctx: inngest.Context) -> Any:
        async def blob() -> str:
            return "x" * (5 * 1024 * 1024)

        await ctx.step.run("blob", blob)
        return "unreachable"

    @client.create_function(fn_id="large", trigger=inngest.TriggerEvent(event="bad/large"))
    async def large(ctx: inngest.Context) -> Any:
        async def chunk(char: str) -> str:
            return char * (3 * 1024 * 1024)

        first = await ctx.step.run("a", chunk, "a")
        second = await ctx.step.run("b", chunk, "b")  # state now exceeds 4 MB: use_api
        return [len(first), len(second), first[0], second[0]]

    @client.create_function(fn_id="fine", trigger=inngest.TriggerEvent(event="bad/fine"))
    async def fine(ctx: inngest.Context) -> Any:
        return "fine"

    return [huge, large, fine]


@pytest.fixture(scope="module")
def app_url(inngest_engine: EngineHandle) -> Any:
    client = make_client(inngest_engine, APP)
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build(client))
    with serve_app(app) as base:
        asyncio.run(sync_app(inngest_engine, base + "/api/inngest"))
        yield base


@pytest.fixture
async def http(inngest_engine: EngineHandle) -> Any:
    async with httpx.AsyncClient(base_url=inngest_engine.base_url, timeout=30) as client:
        yield client


def event_url(engine: EngineHandle) -> str:
    return f"/e/{engine.event_key}"


async def test_malformed_json_event_is_400(inngest_engine, http):
    response = await http.post(
        event_url(inngest_engine), content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.devserver_only
@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (5, "event object or an array"),
        ({"data": {}}, "'name'"),
        ({"name": "bad/x", "data": [1]}, "'data'"),
        ({"name": "bad/x", "ts": "yesterday"}, "'ts'"),
        ({"name": "bad/x", "id": 12}, "'id'"),
    ],
)
async def test_wrong_event_shapes_are_named(inngest_engine, http, payload, needle):
    response = await http.post(event_url(inngest_engine), json=payload)
    assert response.status_code == 400
    assert needle in response.json()["error"]


@pytest.mark.devserver_only
async def test_one_bad_event_stores_nothing_of_its_request(inngest_engine, http):
    marker = f"bad/atomic-{time.time()}"
    response = await http.post(
        event_url(inngest_engine), json=[{"name": marker, "data": {}}, {"data": {}}]
    )
    assert response.status_code == 400
    assert "event 1" in response.json()["error"]
    listed = (await http.get("/v1/events", params={"name": marker})).json()["data"]
    assert listed == []


@pytest.mark.devserver_only
async def test_oversized_event_is_rejected(inngest_engine, http):
    response = await http.post(
        event_url(inngest_engine), json={"name": "bad/big", "data": {"x": "y" * 300_000}}
    )
    assert response.status_code == 413
    assert "maximum event size" in response.json()["error"]


@pytest.mark.devserver_only
async def test_registration_errors_are_named(inngest_engine, http):
    malformed = await http.post("/fn/register", content=b"[}")
    assert malformed.status_code == 400
    assert malformed.json()["error"].startswith("Invalid request")
    nameless = await http.post("/fn/register", json={"url": "http://x", "functions": []})
    assert nameless.status_code == 400
    assert nameless.json()["error"] == "App ID required"
    bad_cron = await http.post(
        "/fn/register",
        json={
            "appname": "bad-cron-app",
            "url": "http://127.0.0.1:9/api/inngest",
            "functions": [
                {
                    "id": "bad-cron-app-f",
                    "name": "f",
                    "triggers": [{"cron": "every tuesday"}],
                    "steps": {
                        "step": {
                            "id": "step",
                            "name": "step",
                            "runtime": {"type": "http", "url": "http://127.0.0.1:9/"},
                        }
                    },
                }
            ],
        },
    )
    assert bad_cron.status_code == 400
    assert bad_cron.json()["error"].startswith("At least one function is invalid")
    assert "cron" in bad_cron.json()["error"]


async def test_unknown_things_are_4xx(inngest_engine, http):
    # v1 GETs carry the error in the body with HTTP 200, as the real server does.
    v1 = await http.get("/v1/events/not-a-ulid")
    assert (v1.status_code, v1.json()["status"]) == (200, 400)
    assert v1.json()["error"] == "Invalid event ID: not-a-ulid"
    missing = await http.get("/v2/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"code": "not_found", "message": "Run not found"}]}
    invoke = await http.post("/v2/apps/nope/functions/nothing/invoke", json={"data": {}})
    assert invoke.status_code == 404
    assert invoke.json()["errors"][0]["code"] == "not_found"
    bulk = await http.post("/v1/cancellations", json={"app_id": APP, "function_id": "fine"})
    assert bulk.status_code == 400
    assert bulk.json()["error"] == "started_before is required"


async def test_oversized_step_output_fails_the_run_not_the_server(inngest_engine, app_url, http):
    [huge_id] = await send_events(inngest_engine, [{"name": "bad/huge", "data": {}}])
    failed = await wait_for_run(inngest_engine, huge_id, status={"Failed"}, timeout=30)
    assert failed["ended_at"] is not None
    if inngest_engine.is_devserver:
        assert "limit is 4194304 bytes" in failed["output"]["message"]
    [fine_id] = await send_events(inngest_engine, [{"name": "bad/fine", "data": {}}])
    assert (await wait_for_run(inngest_engine, fine_id, timeout=15))["output"] == "fine"
    assert (await http.get("/health")).status_code == 200


async def test_state_over_4mb_is_fetched_through_the_api(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "bad/large", "data": {}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=60)
    assert run["output"] == [3 * 1024 * 1024, 3 * 1024 * 1024, "a", "b"]
