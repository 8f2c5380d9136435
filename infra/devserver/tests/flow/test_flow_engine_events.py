"""Rate limit, idempotency, debounce, batching, singleton, cancel_on and registration refusals,
observed through real inngest-py apps (works against INNGEST_BASE_URL too)."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import inngest
import pytest
from devserver.testing import (
    EngineHandle,
    SyncError,
    make_client,
    running_app,
    runs_for_event,
    send_events,
    wait_for_run,
)

SECOND = datetime.timedelta(seconds=1)


def _recording_function(
    client: inngest.Inngest, recorder: Any, event: str, **options: Any
) -> inngest.Function[Any]:
    @client.create_function(fn_id="record", trigger=inngest.TriggerEvent(event=event), **options)
    async def record(ctx: inngest.Context) -> Any:
        async def body() -> int:
            recorder.mark(n=ctx.event.data.get("n"), size=len(ctx.events))
            return len(ctx.events)

        return await ctx.step.run("record", body)

    return record


async def _settle(engine: EngineHandle, ids: list[str], *, runs: int, recorder: Any) -> None:
    """Wait for `runs` recorded executions, then give stray runs a moment to appear."""
    await recorder.wait_for(runs, timeout=15, marks=True)
    await asyncio.sleep(0.6)
    del engine, ids


async def _statuses(engine: EngineHandle, event_id: str) -> list[str]:
    return [run["status"] for run in await runs_for_event(engine, event_id)]


async def test_rate_limit_drops_exactly_the_excess_per_key(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/rl"
    fn = _recording_function(
        client,
        recorder,
        event,
        rate_limit=inngest.RateLimit(limit=1, period=10 * SECOND, key="event.data.customer"),
    )
    async with running_app(inngest_engine, client, [fn]):
        plan = [{"customer": "x"}, {"customer": "x"}, {"customer": "x"}, {"customer": "y"}, {}, {}]
        ids = await send_events(
            inngest_engine, [{"name": event, "data": {**d, "n": i}} for i, d in enumerate(plan)]
        )
        # x: only the first; y: its own bucket; no customer (key false): never limited
        for index in (0, 3, 4, 5):
            await wait_for_run(inngest_engine, ids[index], timeout=15)
        await _settle(inngest_engine, ids, runs=4, recorder=recorder)
        assert sorted(info["n"] for _, info in recorder.marks) == [0, 3, 4, 5]
        for index in (1, 2):
            statuses = await _statuses(inngest_engine, ids[index])
            assert "Completed" not in statuses
            if inngest_engine.is_devserver:
                run = (await runs_for_event(inngest_engine, ids[index]))[0]
                assert (run["status"], "rate limited" in run["reason"]) == ("Skipped", True)


async def test_rate_limit_burst_is_a_tenth_of_the_limit(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/rl10"
    fn = _recording_function(
        client, recorder, event, rate_limit=inngest.RateLimit(limit=10, period=60 * SECOND)
    )
    async with running_app(inngest_engine, client, [fn]):
        ids = await send_events(
            inngest_engine, [{"name": event, "data": {"n": i}} for i in range(5)]
        )
        await _settle(inngest_engine, ids, runs=2, recorder=recorder)
    # GCRA, 10 per minute: floor(10/10) + 1 = 2 back to back, the rest of the burst is dropped
    assert sorted(info["n"] for _, info in recorder.marks) == [0, 1]


async def test_idempotency_runs_once_per_key(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/idem"
    fn = _recording_function(client, recorder, event, idempotency="event.data.order")
    async with running_app(inngest_engine, client, [fn]):
        orders = ["o1", "o1", "o2", "o1", None]
        ids = await send_events(
            inngest_engine,
            [
                {"name": event, "data": {"n": i, **({"order": o} if o else {})}}
                for i, o in enumerate(orders)
            ],
        )
        await _settle(inngest_engine, ids, runs=3, recorder=recorder)
        assert sorted(info["n"] for _, info in recorder.marks) == [0, 2, 4]
        if inngest_engine.is_devserver:
            run = (await runs_for_event(inngest_engine, ids[3]))[0]
            assert run["status"] == "Skipped" and "idempotency" in run["reason"]


async def test_debounce_runs_once_with_the_last_event(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/deb"
    fn = _recording_function(
        client, recorder, event, debounce=inngest.Debounce(period=SECOND, key="event.data.k")
    )
    async with running_app(inngest_engine, client, [fn]):
        ids = []
        for n in range(3):
            ids += await send_events(inngest_engine, [{"name": event, "data": {"k": "a", "n": n}}])
            last_sent = time.time()
            await asyncio.sleep(0.2)
        other = await send_events(inngest_engine, [{"name": event, "data": {"k": "b", "n": 9}}])
        run = await wait_for_run(inngest_engine, ids[-1], timeout=10)
        await wait_for_run(inngest_engine, other[0], timeout=10)
        await asyncio.sleep(0.5)
        assert await runs_for_event(inngest_engine, ids[0]) == []
        assert await runs_for_event(inngest_engine, ids[1]) == []
    assert run["status"] == "Completed"
    a_runs = [(at, info) for at, info in recorder.marks if info["n"] != 9]
    assert [info["n"] for _, info in a_runs] == [2], "one run, with the last event"
    assert a_runs[0][0] - last_sent >= 0.9 - 0.2, "ran only after the period went quiet"


async def test_debounce_timeout_caps_the_delay_under_a_constant_stream(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/debt"
    fn = _recording_function(
        client, recorder, event, debounce=inngest.Debounce(period=SECOND, timeout=2 * SECOND)
    )
    async with running_app(inngest_engine, client, [fn]):
        first_sent = time.time()
        sending_at: list[float] = []  # the engine can fire before the send returns
        sent_at: list[float] = []
        for n in range(14):  # an event every 0.3 s for 4 s: the period never elapses
            sending_at.append(time.time())
            await send_events(inngest_engine, [{"name": event, "data": {"n": n}}])
            sent_at.append(time.time())
            await asyncio.sleep(0.3)
        await recorder.wait_for(2, timeout=10, marks=True)
    (fired_at, info), *_ = recorder.marks
    assert 2.0 - 0.2 <= fired_at - first_sent <= 2.0 + 1.2, "fired at the timeout"
    assert fired_at < sent_at[-1], "while events were still arriving"
    assert sending_at[info["n"]] <= fired_at, "with an event received before it fired"
    settled = [k for k, at in enumerate(sent_at) if at < fired_at - 1.0]
    assert settled and info["n"] >= max(settled), "the last event wins, not the first"


async def test_batches_of_max_size_and_a_timed_partial_batch(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/batch"
    fn = _recording_function(
        client, recorder, event, batch_events=inngest.Batch(max_size=3, timeout=SECOND)
    )
    async with running_app(inngest_engine, client, [fn]):
        sent = time.time()
        ids = await send_events(
            inngest_engine, [{"name": event, "data": {"n": i}} for i in range(7)]
        )
        await recorder.wait_for(3, timeout=10, marks=True)
        runs = [await runs_for_event(inngest_engine, event_id) for event_id in ids]
    sizes = [info["size"] for _, info in recorder.marks]
    assert sorted(sizes) == [1, 3, 3]
    partial_at = next(at for at, info in recorder.marks if info["size"] == 1)
    full_at = [at for at, info in recorder.marks if info["size"] == 3]
    assert max(full_at) < partial_at, "full batches run at once, before the partial one"
    assert 0.8 <= partial_at - sent <= 3.0, "the partial batch runs at its timeout"
    assert len({run[0]["run_id"] for run in runs if run}) == 3
    assert all(len(run) == 1 for run in runs), "every event in exactly one batch run"


async def test_singleton_skip_and_cancel(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    skip_event, cancel_event = f"{app_id}/skip", f"{app_id}/cancel"

    @client.create_function(
        fn_id="skipper",
        trigger=inngest.TriggerEvent(event=skip_event),
        singleton=inngest.Singleton(key="event.data.k", mode="skip"),
    )
    async def skipper(ctx: inngest.Context) -> Any:
        async def body() -> None:
            recorder.mark(fn="skip", n=ctx.event.data["n"])
            await asyncio.sleep(2.0)

        await ctx.step.run("hold", body)

    @client.create_function(
        fn_id="canceller",
        trigger=inngest.TriggerEvent(event=cancel_event),
        singleton=inngest.Singleton(key="event.data.k", mode="cancel"),
    )
    async def canceller(ctx: inngest.Context) -> Any:
        async def body() -> None:
            recorder.mark(fn="cancel", n=ctx.event.data["n"])

        await ctx.step.run("mark", body)
        await ctx.step.sleep("linger", 2 * SECOND)

    async with running_app(inngest_engine, client, [skipper, canceller]):
        first = await send_events(
            inngest_engine, [{"name": skip_event, "data": {"k": "a", "n": 1}}]
        )
        c1 = await send_events(inngest_engine, [{"name": cancel_event, "data": {"k": "a", "n": 1}}])
        await recorder.wait_for(2, timeout=10, marks=True)
        skipped, other = await send_events(
            inngest_engine,
            [
                {"name": skip_event, "data": {"k": "a", "n": 2}},
                {"name": skip_event, "data": {"k": "b", "n": 3}},
            ],
        )
        c2 = await send_events(inngest_engine, [{"name": cancel_event, "data": {"k": "a", "n": 2}}])
        cancelled = await wait_for_run(inngest_engine, c1[0], status={"Cancelled"}, timeout=10)
        await wait_for_run(inngest_engine, c2[0], timeout=10)
        await wait_for_run(inngest_engine, first[0], timeout=10)
        await wait_for_run(inngest_engine, other, timeout=10)
        assert "Completed" not in await _statuses(inngest_engine, skipped)
        # the lock is released when the active run ends: the same key runs again
        again = await send_events(
            inngest_engine, [{"name": skip_event, "data": {"k": "a", "n": 4}}]
        )
        await wait_for_run(inngest_engine, again[0], timeout=10)
    assert cancelled["status"] == "Cancelled"
    ran = sorted((info["fn"], info["n"]) for _, info in recorder.marks)
    assert ran == [("cancel", 1), ("cancel", 2), ("skip", 1), ("skip", 3), ("skip", 4)]
    if inngest_engine.is_devserver:  # every decision carries its reason in the REST API
        [skipped_run] = await runs_for_event(inngest_engine, skipped)
        assert skipped_run["status"] == "Skipped" and "singleton" in skipped_run["reason"]
        assert "singleton" in cancelled["reason"]


async def test_cancel_on_cancels_a_sleeping_run_and_ignores_other_events(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    trigger, stop = f"{app_id}/start", f"{app_id}/stop"

    @client.create_function(
        fn_id="sleeper",
        trigger=inngest.TriggerEvent(event=trigger),
        cancel=[inngest.Cancel(event=stop, if_exp="async.data.id == event.data.id")],
    )
    async def sleeper(ctx: inngest.Context) -> Any:
        async def before() -> None:
            recorder.mark(id=ctx.event.data["id"])

        await ctx.step.run("before", before)
        await ctx.step.sleep("nap", 3 * SECOND)
        return "woke"

    async with running_app(inngest_engine, client, [sleeper]):
        ids = await send_events(
            inngest_engine,
            [{"name": trigger, "data": {"id": "a"}}, {"name": trigger, "data": {"id": "b"}}],
        )
        await recorder.wait_for(2, timeout=10, marks=True)
        await send_events(
            inngest_engine,
            [{"name": stop, "data": {"id": "a"}}, {"name": stop, "data": {"id": "zzz"}}],
        )
        cancelled = await wait_for_run(inngest_engine, ids[0], status={"Cancelled"}, timeout=5)
        finished = await wait_for_run(inngest_engine, ids[1], timeout=10)
    assert cancelled["status"] == "Cancelled"
    assert finished["output"] == "woke"


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        (
            {
                "batch_events": inngest.Batch(max_size=5, timeout=SECOND),
                "debounce": inngest.Debounce(period=SECOND),
            },
            "debounce",
        ),
        (
            {"cancel": [inngest.Cancel(event="x/y", if_exp="async.data.tags.exists(t, t == 1)")]},
            "disallowed",
        ),
    ],
)
async def test_registration_refuses_what_the_server_refuses(
    inngest_engine: EngineHandle, app_id: str, options: dict[str, Any], detail: str
) -> None:
    client = make_client(inngest_engine, app_id)

    @client.create_function(
        fn_id="bad", trigger=inngest.TriggerEvent(event=f"{app_id}/x"), **options
    )
    async def bad(ctx: inngest.Context) -> None:
        return None

    with pytest.raises(SyncError) as refused:
        async with running_app(inngest_engine, client, [bad]):
            pass
    message = str(refused.value)
    assert "invalid" in message.lower()
    if inngest_engine.is_devserver:
        assert "At least one function is invalid" in message and detail in message


async def test_finish_timeout_cancels_a_run_that_runs_too_long(
    inngest_engine: EngineHandle, recorder: Any, app_id: str
) -> None:
    client = make_client(inngest_engine, app_id)
    event = f"{app_id}/long"

    @client.create_function(
        fn_id="long",
        trigger=inngest.TriggerEvent(event=event),
        timeouts=inngest.Timeouts(finish=SECOND),
    )
    async def long(ctx: inngest.Context) -> Any:
        async def begin() -> None:
            recorder.mark(step="begin")

        async def end() -> None:
            recorder.mark(step="end")

        await ctx.step.run("begin", begin)
        await ctx.step.sleep("nap", 5 * SECOND)
        await ctx.step.run("end", end)

    async with running_app(inngest_engine, client, [long]):
        sent = time.time()
        ids = await send_events(inngest_engine, [{"name": event, "data": {}}])
        run = await wait_for_run(inngest_engine, ids[0], status={"Cancelled"}, timeout=10)
        cancelled_after = time.time() - sent
    assert run["status"] == "Cancelled"
    assert cancelled_after < 4.0, "cancelled at the finish timeout, before the sleep ended"
    assert [info["step"] for _, info in recorder.marks] == ["begin"]
