"""App sync, the Event API and trigger matching, over HTTP with real inngest-py apps."""

from __future__ import annotations

import asyncio
import datetime
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
    runs_for_event,
    send_events,
    serve_app,
    sync_app,
    wait_for_run,
    wait_for_run_id,
)

APP = "api-app"


def build(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="api/echo"))
    async def echo(ctx: inngest.Context) -> Any:
        return {"name": ctx.event.name, "data": ctx.event.data, "ts": ctx.event.ts}

    @client.create_function(fn_id="all-api", trigger=inngest.TriggerEvent(event="wild/*"))
    async def all_wild(ctx: inngest.Context) -> Any:
        return "all"

    @client.create_function(fn_id="users", trigger=inngest.TriggerEvent(event="wild/user.*"))
    async def users(ctx: inngest.Context) -> Any:
        return "user"

    @client.create_function(
        fn_id="big-orders",
        trigger=inngest.TriggerEvent(
            event="api/order", expression="event.data.amount > 100 && event.data.currency == 'EUR'"
        ),
    )
    async def big_orders(ctx: inngest.Context) -> Any:
        return ctx.event.data["amount"]

    @client.create_function(
        fn_id="multi",
        trigger=[inngest.TriggerEvent(event="api/one"), inngest.TriggerEvent(event="api/two")],
    )
    async def multi(ctx: inngest.Context) -> Any:
        return ctx.event.name

    @client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="api/other"))
    async def other(ctx: inngest.Context) -> Any:
        return "other"

    @client.create_function(
        fn_id="debounced",
        trigger=inngest.TriggerEvent(event="api/debounced"),
        debounce=inngest.Debounce(period=datetime.timedelta(seconds=2)),
    )
    async def debounced(ctx: inngest.Context) -> Any:
        return "debounced"

    return [echo, all_wild, users, big_orders, multi, other, debounced]


@pytest.fixture(scope="module")
def app_url(inngest_engine: EngineHandle) -> Any:
    client = make_client(inngest_engine, APP)
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build(client))
    with serve_app(app) as base:
        asyncio.run(sync_app(inngest_engine, base + "/api/inngest"))
        yield base


async def settle_runs(engine: EngineHandle, event_id: str, wait: float = 0.8) -> list[dict]:
    """Runs of an event once matching had time to happen."""
    await asyncio.sleep(wait)
    return await runs_for_event(engine, event_id)


# ------------------------------------------------------------------------------------ sync
async def test_resync_of_identical_app_is_not_modified(inngest_engine, app_url):
    body = await sync_app(inngest_engine, app_url + "/api/inngest")
    assert body.get("ok") is True
    assert body.get("modified") is False


async def test_app_functions_are_listed(inngest_engine, app_url):
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        listed = (await http.get(f"/v1/apps/{APP}/functions")).json()
        apps = (await http.get("/v2/apps", params={"limit": 100})).json()["data"]
        v2_listed = (await http.get(f"/v2/apps/{APP}/functions", params={"limit": 100})).json()
    # v1: a bare array, `id` is the app-prefixed slug; v2: the SDK's own function id.
    assert {f["id"] for f in listed} >= {f"{APP}-echo", f"{APP}-multi", f"{APP}-users"}
    assert {f["id"] for f in v2_listed["data"]} >= {"echo", "multi", "users"}
    assert APP in {a["id"] for a in apps}


@pytest.mark.parametrize("key", ["appname", "appName"])
async def test_register_accepts_both_app_name_spellings(inngest_engine, key):
    app_name = f"raw-{key.lower()}-{int(time.time() * 1000)}"
    body = {
        key: app_name,
        "url": "http://127.0.0.1:9/api/inngest",
        "deployType": "ping",
        "framework": "fast_api",
        "sdk": "py:v0.5.19",
        "v": "0.1",
        "functions": [
            {
                "id": f"{app_name}-f",
                "name": "f",
                "triggers": [{"event": "raw/x"}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "runtime": {"type": "http", "url": "http://127.0.0.1:9/api/inngest?fnId=f"},
                    }
                },
            }
        ],
    }
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post("/fn/register", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
        listed = (await http.get(f"/v1/apps/{app_name}/functions")).json()
    assert [f["id"] for f in listed] == [f"{app_name}-f"]


async def test_function_removed_from_app_stops_triggering(inngest_engine):
    app_id = f"shrinking-{int(time.time() * 1000)}"

    def serve(with_second: bool) -> fastapi.FastAPI:
        client = make_client(inngest_engine, app_id)

        @client.create_function(fn_id="keep", trigger=inngest.TriggerEvent(event="shrink/keep"))
        async def keep(ctx: inngest.Context) -> Any:
            return "kept"

        @client.create_function(fn_id="drop", trigger=inngest.TriggerEvent(event="shrink/drop"))
        async def drop(ctx: inngest.Context) -> Any:
            return "dropped"

        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, client, [keep, drop] if with_second else [keep])
        return app

    with serve_app(serve(True)) as base:
        await sync_app(inngest_engine, base + "/api/inngest")
        [before] = await send_events(inngest_engine, [{"name": "shrink/drop", "data": {}}])
        assert (await wait_for_run(inngest_engine, before, timeout=10))["output"] == "dropped"
    with serve_app(serve(False)) as base:
        await sync_app(inngest_engine, base + "/api/inngest")
        [after] = await send_events(inngest_engine, [{"name": "shrink/drop", "data": {}}])
        [kept] = await send_events(inngest_engine, [{"name": "shrink/keep", "data": {}}])
        assert (await wait_for_run(inngest_engine, kept, timeout=10))["output"] == "kept"
        assert await settle_runs(inngest_engine, after) == []


# ------------------------------------------------------------------------------------ events
async def test_event_object_and_array_return_ids_in_order(inngest_engine, app_url):
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        single = await http.post(
            f"/e/{inngest_engine.event_key}", json={"name": "api/echo", "data": {"i": 0}}
        )
        many = await http.post(
            f"/e/{inngest_engine.event_key}",
            json=[{"name": "api/echo", "data": {"i": i}} for i in range(1, 4)],
        )
        assert single.status_code == 200 and many.status_code == 200
        ids = single.json()["ids"] + many.json()["ids"]
        assert len(ids) == 4
        stored = [(await http.get(f"/v1/events/{i}")).json()["data"] for i in ids]
    assert [e["data"]["i"] for e in stored] == [0, 1, 2, 3]
    runs = [await wait_for_run(inngest_engine, i, timeout=10) for i in ids]
    assert [r["output"]["data"]["i"] for r in runs] == [0, 1, 2, 3]


async def test_reserved_event_names_are_rejected(inngest_engine, app_url):
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(
            f"/e/{inngest_engine.event_key}", json={"name": "inngest/function.failed", "data": {}}
        )
    assert response.status_code == 400
    assert "reserved" in response.json()["error"]


async def test_duplicate_event_id_starts_no_second_run(inngest_engine, app_url):
    dedup_id = f"dedup-{time.time()}"
    [first] = await send_events(inngest_engine, [{"name": "api/echo", "id": dedup_id}])
    await wait_for_run(inngest_engine, first, timeout=10)
    [second] = await send_events(inngest_engine, [{"name": "api/echo", "id": dedup_id}])
    assert second != first
    assert await settle_runs(inngest_engine, second) == []


@pytest.mark.devserver_only
async def test_duplicate_event_id_is_deduplicated_across_names(inngest_engine, app_url):
    dedup_id = f"cross-{time.time()}"
    [first] = await send_events(inngest_engine, [{"name": "api/echo", "id": dedup_id}])
    await wait_for_run(inngest_engine, first, timeout=10)
    [second] = await send_events(inngest_engine, [{"name": "api/other", "id": dedup_id}])
    assert await settle_runs(inngest_engine, second) == []


async def test_future_ts_delays_the_run_start(inngest_engine, app_url):
    sent = time.time()
    ts = int((sent + 2) * 1000)
    [event_id] = await send_events(inngest_engine, [{"name": "api/echo", "ts": ts}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert time.time() - sent >= 1.8
    assert run["output"]["ts"] == ts


# ------------------------------------------------------------------------------------ triggers
async def test_wildcard_triggers(inngest_engine, app_url):
    [user_event] = await send_events(inngest_engine, [{"name": "wild/user.created"}])
    [other_event] = await send_events(inngest_engine, [{"name": "wild/thing"}])
    await wait_for_run(inngest_engine, other_event, timeout=10)
    await wait_for_run(inngest_engine, user_event, timeout=10)
    user_runs = await settle_runs(inngest_engine, user_event, 0.3)
    other_runs = await runs_for_event(inngest_engine, other_event)
    assert sorted(r["output"] for r in user_runs) == ["all", "user"]
    assert [r["output"] for r in other_runs] == ["all"]


async def test_trigger_expression_filters_events(inngest_engine, app_url):
    ids = await send_events(
        inngest_engine,
        [
            {"name": "api/order", "data": {"amount": 150, "currency": "EUR"}},
            {"name": "api/order", "data": {"amount": 50, "currency": "EUR"}},
            {"name": "api/order", "data": {"amount": 500, "currency": "USD"}},
            {"name": "api/order", "data": {"currency": "EUR"}},  # missing field: no match
        ],
    )
    assert (await wait_for_run(inngest_engine, ids[0], timeout=10))["output"] == 150
    for event_id in ids[1:]:
        assert await settle_runs(inngest_engine, event_id, 0.3) == []


async def test_several_triggers_start_one_function(inngest_engine, app_url):
    ids = await send_events(inngest_engine, [{"name": "api/one"}, {"name": "api/two"}])
    outputs = [(await wait_for_run(inngest_engine, i, timeout=10))["output"] for i in ids]
    assert outputs == ["api/one", "api/two"]


async def test_manual_invoke_through_rest(inngest_engine, app_url):
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(
            f"/v2/apps/{APP}/functions/echo/invoke", json={"data": {"manual": True}}
        )
    assert response.status_code == 200, response.text
    run_id = response.json()["data"]["runId"]
    run = await wait_for_run_id(inngest_engine, run_id, timeout=10)
    assert run["output"]["name"] == "inngest/function.invoked"
    assert run["output"]["data"]["manual"] is True


async def test_invoking_a_debounced_function_answers_422_function_debounced(
    inngest_engine, app_url
):
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        response = await http.post(
            f"/v2/apps/{APP}/functions/debounced/invoke", json={"data": {"n": 1}}
        )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "function_debounced"


@pytest.mark.devserver_only
async def test_retried_send_with_the_same_seed_is_processed_once(inngest_engine, app_url):
    import base64
    import secrets

    seed = f"{int(time.time() * 1000)},{base64.b64encode(secrets.token_bytes(10)).decode()}"
    body = [{"name": "api/echo", "data": {"i": i}} for i in range(2)]
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        headers = {"x-inngest-event-id-seed": seed}
        first = await http.post(f"/e/{inngest_engine.event_key}", json=body, headers=headers)
        again = await http.post(f"/e/{inngest_engine.event_key}", json=body, headers=headers)
    ids = first.json()["ids"]
    assert again.json()["ids"] == ids and len(set(ids)) == 2
    for event_id in ids:
        await wait_for_run(inngest_engine, event_id, timeout=10)
        assert len(await settle_runs(inngest_engine, event_id, 0.3)) == 1
