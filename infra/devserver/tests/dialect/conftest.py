"""The app of the real-server recordings (tests/fixtures/inngest-rest-recorded/README.md), served
to the engine under test, and its runs in the recorded states.

The recordings used app `rec` with functions two-steps, fails, waits, sleeps, nightly, single and
invoker; this is the same app (id `dialect-rec`, shorter sleeps, a longer wait), driven into the
same states, so each dialect test can ask the engine the same question the recording asked and
compare shapes.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.shape_diff import assert_same_answer
from devserver.testing import (
    EngineHandle,
    make_client,
    send_events,
    serve_app,
    sync_app,
    wait_for_run,
    wait_for_run_id,
)

APP = "dialect-rec"
RECORDINGS = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "inngest-rest-recorded"


def recordings(pattern: str = "[01][0-9]-*.json") -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for path in sorted(RECORDINGS.glob(pattern)):
        if pattern.startswith("[01]") and path.name.startswith("12-"):
            continue  # start mode counts its own sequence
        for recording in json.loads(path.read_text())["recordings"]:
            found[recording["seq"]] = recording
    return found


RECORDED = recordings()
START_MODE = recordings("12-*.json")


def build(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    @client.create_function(fn_id="two-steps", trigger=inngest.TriggerEvent(event="rec/go"))
    async def two_steps(ctx: inngest.Context) -> Any:
        k = ctx.event.data.get("k")

        async def first() -> dict[str, Any]:
            return {"got": k, "n": 1}

        async def second() -> dict[str, Any]:
            return {"n": 2}

        return {"a": await ctx.step.run("first", first), "b": await ctx.step.run("second", second)}

    @client.create_function(
        fn_id="fails", trigger=inngest.TriggerEvent(event="rec/fail"), retries=0
    )
    async def fails(ctx: inngest.Context) -> Any:
        raise inngest.NonRetriableError("boom: deliberate failure")

    @client.create_function(fn_id="waits", trigger=inngest.TriggerEvent(event="rec/wait"))
    async def waits(ctx: inngest.Context) -> Any:
        reply = await ctx.step.wait_for_event(
            "wait-reply",
            event="rec/reply",
            if_exp="async.data.k == event.data.k",
            # An hour, not the recorded app's 30 s (no recorded answer shows it): `rec` is
            # session-wide, and a test file that runs later (another worker's order under
            # pytest-xdist, a slow machine) must still find the run waiting.
            timeout=datetime.timedelta(hours=1),
        )
        return {"matched": reply is not None}

    @client.create_function(fn_id="sleeps", trigger=inngest.TriggerEvent(event="rec/sleep"))
    async def sleeps(ctx: inngest.Context) -> Any:
        await ctx.step.sleep("nap", datetime.timedelta(hours=1))
        return "woke"

    @client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 9 * * *"))
    async def nightly(ctx: inngest.Context) -> Any:
        async def step() -> str:
            return "done"

        return {"nightly": await ctx.step.run("nightly-step", step)}

    @client.create_function(
        fn_id="single",
        trigger=inngest.TriggerEvent(event="rec/single"),
        singleton=inngest.Singleton(key="event.data.k", mode="skip"),
    )
    async def single(ctx: inngest.Context) -> Any:
        await ctx.step.sleep("hold", datetime.timedelta(seconds=3))
        return "single-done"

    @client.create_function(fn_id="invoker", trigger=inngest.TriggerEvent(event="rec/invoke"))
    async def invoker(ctx: inngest.Context) -> Any:
        return {"invoked": await ctx.step.invoke("call-two-steps", function=two_steps)}

    return [two_steps, fails, waits, sleeps, nightly, single, invoker]


@dataclass
class Rec:
    """The engine, an HTTP client on it, and one run id per recorded state."""

    engine: EngineHandle
    http: httpx.Client
    completed: str  # two-steps, COMPLETED
    completed_event: str
    failed: str  # fails, FAILED
    failed_event: str
    sleeping: str  # sleeps, RUNNING in step.sleep
    waiting: str  # waits, RUNNING in wait_for_event
    cancelled: str  # waits, CANCELLED while waiting
    rerun_from_step: str  # two-steps rerun from "second"
    invoker: str  # invoker, COMPLETED after step.invoke
    app: str = APP

    def recorded_body(self, seq: int) -> Any:
        return RECORDED[seq]["response"]["body"]

    def same(
        self,
        seq: int,
        response: httpx.Response,
        *also: int,
        missing_ok: frozenset[str] = frozenset(),
    ) -> Any:
        """Assert the engine answered like recording `seq` (merged with the recordings `also`
        of the same route in other states); returns the body."""
        return assert_same_answer(
            RECORDED[seq],
            response,
            also=tuple(RECORDED[a] for a in also),
            missing_ok=missing_ok,
        )


async def _prepare(engine: EngineHandle) -> dict[str, str]:
    sent = await send_events(
        engine,
        [
            {"name": "rec/go", "data": {"k": "a1"}},
            {"name": "rec/fail", "data": {"k": "f1"}},
            {"name": "rec/sleep", "data": {"k": "s1"}},
            {"name": "rec/wait", "data": {"k": "w1"}},
            {"name": "rec/wait", "data": {"k": "w2"}},
            {"name": "rec/invoke", "data": {"k": "from-invoker"}},
        ],
    )
    go, fail, sleep, wait, wait_cancel, invoke = sent
    completed = await wait_for_run(engine, go, timeout=20)
    failed = await wait_for_run(engine, fail, status={"Failed"}, timeout=20)
    sleeping = await wait_for_run(engine, sleep, status={"Running"}, timeout=20)
    waiting = await wait_for_run(engine, wait, status={"Running"}, timeout=20)
    cancelled = await wait_for_run(engine, wait_cancel, status={"Running"}, timeout=20)
    invoker = await wait_for_run(engine, invoke, timeout=30)
    await asyncio.sleep(0.5)  # let the sleep / wait be reached before cancelling
    async with httpx.AsyncClient(base_url=engine.base_url, headers=engine.headers) as http:
        cancel = await http.post(f"/v2/runs/{cancelled['run_id']}/cancel")
        cancel.raise_for_status()
        await wait_for_run_id(engine, cancelled["run_id"], status={"Cancelled"})
        rerun = await http.post(
            f"/v2/runs/{completed['run_id']}/rerun", json={"fromStep": {"stepId": "second"}}
        )
    rerun.raise_for_status()
    rerun_id = rerun.json()["data"]["runId"]
    await wait_for_run_id(engine, rerun_id, timeout=20)
    return {
        "completed": completed["run_id"],
        "completed_event": go,
        "failed": failed["run_id"],
        "failed_event": fail,
        "sleeping": sleeping["run_id"],
        "waiting": waiting["run_id"],
        "cancelled": cancelled["run_id"],
        "rerun_from_step": rerun_id,
        "invoker": invoker["run_id"],
    }


@pytest.fixture(scope="session")
def rec(inngest_engine: EngineHandle) -> Iterator[Rec]:
    client = make_client(inngest_engine, APP)
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build(client))
    with (
        serve_app(app) as base,
        httpx.Client(
            base_url=inngest_engine.base_url, headers=inngest_engine.headers, timeout=30
        ) as http,
    ):
        asyncio.run(sync_app(inngest_engine, base + "/api/inngest"))
        runs = asyncio.run(_prepare(inngest_engine))
        yield Rec(engine=inngest_engine, http=http, **runs)


@pytest.fixture(scope="session")
def start_mode() -> dict[int, dict[str, Any]]:
    """Recordings of the real server in start mode (signing key), by `seq`."""
    return START_MODE
