"""Concurrency, priority, throttle and timeouts.start, observed through real inngest-py apps.

Each step records its start/end time inside the app; assertions are on those observations.
Runs unchanged against a real Inngest server (INNGEST_BASE_URL); tolerances allow its ~150 ms
queue tick. `devserver_only` tests use the devserver's flow introspection route.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections import Counter, defaultdict
from typing import Any

import httpx
import inngest
import pytest
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    send_events,
    wait_for_run,
)

STEP_S = 0.8  # long enough that a loaded machine still starts a whole wave before one ends


def _customer_function(
    client: inngest.Inngest, recorder: Any, event: str, **options: Any
) -> inngest.Function[Any]:
    @client.create_function(fn_id="work", trigger=inngest.TriggerEvent(event=event), **options)
    async def work(ctx: inngest.Context) -> Any:
        customer = str(ctx.event.data["customer"])

        async def body() -> str:
            started = time.time()
            await asyncio.sleep(STEP_S)
            recorder.interval(started, time.time(), customer, n=ctx.event.data["n"])
            return customer

        return await ctx.step.run("work", body)

    return work


async def test_predict_case_per_customer_limit_and_priority_by_tier(
    inngest_engine: EngineHandle, recorder: Any, app_id: str, overlap: Any, completed: Any
) -> None:
    """Concurrency 10 + 2 per customer + priority by tier (the course's Predict case)."""
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/predict"
    fn = _customer_function(
        client,
        recorder,
        event,
        concurrency=[
            inngest.Concurrency(limit=10),
            inngest.Concurrency(limit=2, key="event.data.customer"),
        ],
        priority=inngest.Priority(run="event.data.tier == 'enterprise' ? 120 : 0"),
    )
    tiers = {"A": "free", "B": "enterprise", "C": "free"}
    plan = ["A"] * 5 + ["C"] * 10 + ["B"] * 5  # the enterprise customer's events arrive last
    async with running_app(inngest_engine, client, [fn]):
        ids = await send_events(
            inngest_engine,
            [
                {"name": event, "data": {"customer": c, "tier": tiers[c], "n": i}}
                for i, c in enumerate(plan)
            ],
        )
        await recorder.wait_for(20, timeout=30)
        for event_id in ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
    steps = recorder.intervals
    first_end = min(step.end for step in steps)
    wave = Counter(step.group for step in steps if step.start < first_end)
    assert wave == {"A": 2, "B": 2, "C": 2}, "exactly 6 at t=0, two per customer (B's included)"
    for customer in "ABC":
        assert overlap([s for s in steps if s.group == customer]) <= 2, customer
    assert overlap(steps) <= 10
    runs = await completed(inngest_engine, ids)
    assert all(len(found) == 1 for found in runs.values()), "all 20 complete, exactly once"


async def test_burst_over_five_customers_with_throttle(
    inngest_engine: EngineHandle, recorder: Any, app_id: str, overlap: Any, completed: Any
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/burst"
    fn = _customer_function(
        client,
        recorder,
        event,
        concurrency=[
            inngest.Concurrency(limit=10),
            inngest.Concurrency(limit=2, key="event.data.customer"),
        ],
        throttle=inngest.Throttle(limit=100, period=datetime.timedelta(minutes=1)),
    )
    async with running_app(inngest_engine, client, [fn]):
        ids = await send_events(
            inngest_engine,
            [{"name": event, "data": {"customer": f"c{i % 5}", "n": i}} for i in range(20)],
        )
        await recorder.wait_for(20, timeout=30)
        for event_id in ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
    steps = recorder.intervals
    assert overlap(steps) == 10
    assert max(overlap([s for s in steps if s.group == f"c{i}"]) for i in range(5)) == 2
    assert sorted(step.info["n"] for step in steps) == list(range(20)), "none duplicated"
    runs = await completed(inngest_engine, ids)
    assert sum(len(found) for found in runs.values()) == 20


async def test_priority_reorders_a_backlog(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/prio"

    @client.create_function(
        fn_id="prio",
        trigger=inngest.TriggerEvent(event=event),
        concurrency=[inngest.Concurrency(limit=1)],
        priority=inngest.Priority(run="event.data.vip ? 60 : 0"),
    )
    async def prio(ctx: inngest.Context) -> Any:
        async def body() -> None:
            started = time.time()
            recorder.mark(name=ctx.event.data["name"])
            await asyncio.sleep(1.5 if ctx.event.data["name"] == "blocker" else 0.05)
            recorder.interval(started, time.time(), str(ctx.event.data["name"]))

        await ctx.step.run("work", body)

    async with running_app(inngest_engine, client, [prio]):
        blocker = await send_events(
            inngest_engine, [{"name": event, "data": {"name": "blocker", "vip": False}}]
        )
        await recorder.wait_for(1, marks=True)  # the blocker holds the only slot
        backlog = [{"name": event, "data": {"name": f"n{i}", "vip": False}} for i in range(3)]
        vip = [{"name": event, "data": {"name": "vip", "vip": True}}]
        ids = await send_events(inngest_engine, backlog + vip)  # the VIP event arrives last
        for event_id in blocker + ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
    order = [step.group for step in sorted(recorder.intervals, key=lambda s: s.start)]
    assert order == ["blocker", "vip", "n0", "n1", "n2"]


async def test_throttle_start_times_follow_gcra(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/throttle"

    @client.create_function(
        fn_id="throttled",
        trigger=inngest.TriggerEvent(event=event),
        throttle=inngest.Throttle(limit=2, period=datetime.timedelta(seconds=1), burst=1),
    )
    async def throttled(ctx: inngest.Context) -> Any:
        async def body() -> None:
            recorder.mark(n=ctx.event.data["n"])

        await ctx.step.run("start", body)

    async with running_app(inngest_engine, client, [throttled]):
        ids = await send_events(
            inngest_engine, [{"name": event, "data": {"n": i}} for i in range(6)]
        )
        for event_id in ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
    first = min(at for at, _ in recorder.marks)
    starts = sorted(at - first for at, _ in recorder.marks)
    # limit 2 per second + burst 1: 3 starts at once, then one every 0.5 s. GCRA never admits
    # early; a late start (loaded machine) lets the next one catch up, as GCRA allows.
    slots = [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
    assert max(starts[:3]) <= 0.6, starts
    for observed, slot in zip(starts, slots, strict=True):
        assert observed >= slot - 0.25, ("started before its GCRA slot", starts)
    assert starts[-1] <= slots[-1] + 1.2, starts


async def test_start_timeout_cancels_a_run_that_waited_too_long(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/slow"

    @client.create_function(
        fn_id="slow",
        trigger=inngest.TriggerEvent(event=event),
        concurrency=[inngest.Concurrency(limit=1)],
        timeouts=inngest.Timeouts(start=datetime.timedelta(seconds=1)),
    )
    async def slow(ctx: inngest.Context) -> Any:
        async def body() -> None:
            started = time.time()
            await asyncio.sleep(2.5)
            recorder.interval(started, time.time(), str(ctx.event.data["n"]))

        await ctx.step.run("hold", body)

    async with running_app(inngest_engine, client, [slow]):
        first = await send_events(inngest_engine, [{"name": event, "data": {"n": 1}}])
        await asyncio.sleep(0.2)
        second = await send_events(inngest_engine, [{"name": event, "data": {"n": 2}}])
        cancelled = await wait_for_run(inngest_engine, second[0], status={"Cancelled"}, timeout=10)
        await wait_for_run(inngest_engine, first[0], timeout=10)
    assert cancelled["status"] == "Cancelled"
    assert [step.group for step in recorder.intervals] == ["1"], "the queued run never started"


@pytest.mark.devserver_only
async def test_flow_introspection_shows_queue_and_running_per_key(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/look"
    fn = _customer_function(
        client,
        recorder,
        event,
        concurrency=[inngest.Concurrency(limit=1, key="event.data.customer")],
    )
    url = f"{inngest_engine.base_url}/v2/apps/{app_id}/functions/work/flow"
    seen: list[dict[str, Any]] = []
    async with running_app(inngest_engine, client, [fn]):
        ids = await send_events(
            inngest_engine,
            [{"name": event, "data": {"customer": c, "n": i}} for i, c in enumerate("xxxy")],
        )
        run_reasons: list[str] = []
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(40):
                body = (await http.get(url, headers=inngest_engine.headers)).json()["data"]
                seen.append(body)
                if body["running"] == 2:
                    break
                await asyncio.sleep(0.05)
            # The queued runs say why they wait in the ordinary run views too.
            for event_id in ids:
                runs_url = f"{inngest_engine.base_url}/v1/events/{event_id}/runs"
                for run in (await http.get(runs_url, headers=inngest_engine.headers)).json()[
                    "data"
                ]:
                    if run.get("reason"):
                        run_reasons.append(run["reason"])
        for event_id in ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
        async with httpx.AsyncClient(timeout=10) as http:
            after = (await http.get(url, headers=inngest_engine.headers)).json()["data"]
    busy = seen[-1]
    assert busy["running"] == 2
    assert busy["concurrency_keys"] == {f"f:{app_id}-work:x": 1, f"f:{app_id}-work:y": 1}
    assert busy["queued_runs"] + busy["queued_jobs"] >= 1  # x's other runs wait their turn
    reasons = [reason for body in seen for reason in body["waiting"].values()]
    assert any(f"f:{app_id}-work:x" in reason for reason in reasons), reasons
    assert any(f"f:{app_id}-work:x" in reason for reason in run_reasons), run_reasons
    assert after["running"] == 0 and after["queued_runs"] == 0
    by_customer: dict[str, int] = defaultdict(int)
    for step in recorder.intervals:
        by_customer[step.group] += 1
    assert by_customer == {"x": 3, "y": 1}


async def test_account_scoped_key_is_shared_across_functions(
    inngest_engine: EngineHandle, recorder: Any, app_id: str, overlap: Any
) -> None:
    client = make_client(inngest_engine, app_id)
    shared = [inngest.Concurrency(limit=1, key="event.data.customer", scope="account")]

    def make(fn_id: str) -> inngest.Function[Any]:
        @client.create_function(
            fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"{app_id}/{fn_id}"), concurrency=shared
        )
        async def handler(ctx: inngest.Context) -> Any:
            async def body() -> None:
                started = time.time()
                await asyncio.sleep(0.6)
                recorder.interval(started, time.time(), str(ctx.event.data["customer"]), fn=fn_id)

            await ctx.step.run("work", body)

        return handler

    async with running_app(inngest_engine, client, [make("one"), make("two")]):
        ids = await send_events(
            inngest_engine,
            [
                {"name": f"{app_id}/{fn_id}", "data": {"customer": customer}}
                for fn_id in ("one", "two")
                for customer in ("k", "k", "m")
            ],
        )
        for event_id in ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
    k_steps = [step for step in recorder.intervals if step.group == "k"]
    assert {step.info["fn"] for step in k_steps} == {"one", "two"}
    assert overlap(k_steps) == 1, "one slot for customer k across both functions"
    assert overlap(recorder.intervals) >= 2, "other keys are not blocked by k"


async def test_sleeping_runs_hold_no_concurrency_slot(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/nap"

    @client.create_function(
        fn_id="napper",
        trigger=inngest.TriggerEvent(event=event),
        concurrency=[inngest.Concurrency(limit=1)],
    )
    async def napper(ctx: inngest.Context) -> Any:
        n = ctx.event.data["n"]

        async def before() -> None:
            recorder.mark(n=n, step="before")

        async def after() -> None:
            recorder.mark(n=n, step="after")

        await ctx.step.run("before", before)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=2))
        await ctx.step.run("after", after)

    async with running_app(inngest_engine, client, [napper]):
        ids = await send_events(
            inngest_engine, [{"name": event, "data": {"n": i}} for i in range(3)]
        )
        for event_id in ids:
            await wait_for_run(inngest_engine, event_id, timeout=15)
    order = [(info["n"], info["step"]) for _, info in sorted(recorder.marks, key=lambda m: m[0])]
    befores = [index for index, (_, step) in enumerate(order) if step == "before"]
    assert befores == [0, 1, 2], f"all three start while the others sleep: {order}"
