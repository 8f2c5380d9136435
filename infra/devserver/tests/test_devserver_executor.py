"""Executor semantics driven through real inngest-py functions over HTTP
(infra/devserver/docs/calls.md, infra/devserver/docs/executor.md).

Runs unchanged against a real Inngest dev server (INNGEST_BASE_URL); timings assume the engine
was started with a 1 s retry interval (`--retry-interval 1`).
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections import Counter
from typing import Any

import fastapi
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
)
from inngest.experimental.ai.openai import Adapter as OpenAIAdapter

APP = "exec"
calls: Counter[str] = Counter()
marks: dict[str, float] = {}


def build_functions(client: inngest.Inngest, ai_url: str) -> list[inngest.Function[Any]]:
    return [
        *step_functions(client),
        *invoke_functions(client),
        *retry_functions(client),
        ai_function(client, ai_url),
    ]


def step_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """Memoized, parallel, racing, sleeping and waiting steps."""

    @client.create_function(fn_id="memo", trigger=inngest.TriggerEvent(event="exec/memo"))
    async def memo(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]

        async def first() -> dict[str, Any]:
            calls[f"{tag}:first"] += 1
            return {"data": 5}  # a result that looks like a memo envelope must survive

        async def second() -> None:
            calls[f"{tag}:second"] += 1

        one = await ctx.step.run("first", first)
        two = await ctx.step.run("second", second)
        again = await ctx.step.run("first", first)  # repeated id -> hashed "first:1"
        return {"one": one, "two": two, "again": again}

    @client.create_function(fn_id="parallel", trigger=inngest.TriggerEvent(event="exec/par"))
    async def parallel(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]

        def branch(name: str, value: int) -> Any:
            async def body() -> int:
                calls[f"{tag}:{name}"] += 1
                return value

            return lambda: ctx.step.run(name, body)

        results = await ctx.group.parallel((branch("p1", 1), branch("p2", 2), branch("p3", 3)))

        async def after() -> int:
            calls[f"{tag}:after"] += 1
            return sum(results)

        return await ctx.step.run("after", after)

    @client.create_function(fn_id="racer", trigger=inngest.TriggerEvent(event="exec/race"))
    async def racer(ctx: inngest.Context) -> Any:
        async def quick() -> str:
            calls["race:quick"] += 1
            return "quick"

        async def slow() -> str:
            calls["race:slow"] += 1
            await asyncio.sleep(0.5)
            return "slow"

        return list(
            await ctx.group.parallel(
                (lambda: ctx.step.run("quick", quick), lambda: ctx.step.run("slow", slow)),
                parallel_mode=inngest.ParallelMode.RACE,
            )
        )

    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="exec/sleep"))
    async def sleeper(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]

        async def before() -> float:
            calls[f"{tag}:before"] += 1
            return time.time()

        started = await ctx.step.run("before", before)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
        await ctx.step.sleep_until("nap-until", until)

        async def after() -> float:
            calls[f"{tag}:after"] += 1
            return time.time()

        ended = await ctx.step.run("after", after)
        return {"elapsed": ended - started}

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="exec/wait"))
    async def waiter(ctx: inngest.Context) -> Any:
        found = await ctx.step.wait_for_event(
            "approval",
            event="exec/approved",
            if_exp="async.data.order == event.data.order",
            timeout=datetime.timedelta(seconds=ctx.event.data.get("timeout", 10)),
        )
        return None if found is None else {"by": found.data["by"], "id": found.id}

    return [memo, parallel, racer, sleeper, waiter]


def invoke_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """step.invoke (found, failing, slow, missing) and step.send_event fan-out."""

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="exec/child"))
    async def child(ctx: inngest.Context) -> Any:
        if ctx.event.data.get("fail"):
            raise inngest.NonRetriableError("child refused")
        if ctx.event.data.get("slow"):
            await ctx.step.sleep("slow", datetime.timedelta(seconds=5))
        return {"doubled": ctx.event.data["n"] * 2}

    @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="exec/parent"))
    async def parent(ctx: inngest.Context) -> Any:
        try:
            result = await ctx.step.invoke(
                "call-child",
                function=child,
                data=dict(ctx.event.data),
                timeout=datetime.timedelta(seconds=2),
            )
        except inngest.StepError as err:
            return {"error": err.name, "message": err.message}
        return {"child": result}

    @client.create_function(fn_id="lost", trigger=inngest.TriggerEvent(event="exec/lost"))
    async def lost(ctx: inngest.Context) -> Any:
        try:
            await ctx.step.invoke_by_id(
                "call-nobody", app_id="exec", function_id="does-not-exist", data={}
            )
        except inngest.StepError as err:
            return {"error": err.message}
        return "unexpected"

    @client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="exec/send"))
    async def sender(ctx: inngest.Context) -> Any:
        ids = await ctx.step.send_event(
            "fan-out", [inngest.Event(name="exec/fanned", data={"i": i}) for i in range(3)]
        )
        return {"ids": ids}

    @client.create_function(fn_id="fanned", trigger=inngest.TriggerEvent(event="exec/fanned"))
    async def fanned(ctx: inngest.Context) -> Any:
        return ctx.event.data["i"]

    return [child, parent, lost, sender, fanned]


def retry_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """Step retries, NonRetriableError, RetryAfterError and on_failure."""

    @client.create_function(
        fn_id="flaky", trigger=inngest.TriggerEvent(event="exec/flaky"), retries=3
    )
    async def flaky(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]

        async def step() -> str:
            calls[f"{tag}:attempt"] += 1
            marks[f"{tag}:{ctx.attempt}"] = time.time()
            if ctx.attempt < ctx.event.data["fail_times"]:
                raise ValueError(f"boom {ctx.attempt}")
            return f"ok after {ctx.attempt}"

        try:
            return await ctx.step.run("unstable", step)
        except inngest.StepError as err:
            return {"caught": err.name, "message": err.message}

    @client.create_function(
        fn_id="fatal", trigger=inngest.TriggerEvent(event="exec/fatal"), retries=3
    )
    async def fatal(ctx: inngest.Context) -> Any:
        calls[f"{ctx.event.data['tag']}:fatal"] += 1
        raise inngest.NonRetriableError("do not retry me")

    @client.create_function(
        fn_id="later", trigger=inngest.TriggerEvent(event="exec/later"), retries=2
    )
    async def later(ctx: inngest.Context) -> Any:
        tag = ctx.event.data["tag"]
        marks[f"{tag}:{ctx.attempt}"] = time.time()
        if ctx.attempt == 0:
            raise inngest.RetryAfterError("come back later", datetime.timedelta(seconds=3))
        return ctx.attempt

    async def on_failure(ctx: inngest.Context) -> None:
        calls[f"{ctx.event.data['event']['data']['tag']}:on_failure"] += 1
        marks["failure_error"] = ctx.event.data["error"]["message"]  # type: ignore[assignment]

    @client.create_function(
        fn_id="doomed",
        trigger=inngest.TriggerEvent(event="exec/doomed"),
        retries=0,
        on_failure=on_failure,
    )
    async def doomed(ctx: inngest.Context) -> Any:
        raise ValueError("doomed to fail")

    return [flaky, fatal, later, doomed]


def ai_function(client: inngest.Inngest, ai_url: str) -> inngest.Function[Any]:
    """step.ai.infer against a fake OpenAI."""

    @client.create_function(fn_id="ai", trigger=inngest.TriggerEvent(event="exec/ai"))
    async def ai_fn(ctx: inngest.Context) -> Any:
        adapter = OpenAIAdapter(auth_key="sk-test", model="tiny", base_url=ai_url)
        response = await ctx.step.ai.infer(
            "ask", adapter=adapter, body={"messages": [{"role": "user", "content": "hi"}]}
        )
        return response["choices"][0]["message"]["content"]  # type: ignore[index]

    return ai_fn


def fake_openai() -> fastapi.FastAPI:
    app = fastapi.FastAPI()

    @app.post("/chat/completions")
    async def completions(request: fastapi.Request) -> dict[str, Any]:
        body = await request.json()
        auth = request.headers.get("authorization")
        text = f"{body['model']} says hello ({auth})"
        return {"choices": [{"message": {"role": "assistant", "content": text}}]}

    return app


@pytest.fixture(scope="module")
def app_url(inngest_engine: EngineHandle) -> Any:
    with serve_app(fake_openai()) as ai_url:
        client = make_client(inngest_engine, APP)
        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, client, build_functions(client, ai_url))
        with serve_app(app) as base:
            asyncio.run(sync_app(inngest_engine, base + "/api/inngest"))
            yield base


async def test_step_results_are_memoized_and_replayed(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/memo", "data": {"tag": "m1"}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"] == {"one": {"data": 5}, "two": None, "again": {"data": 5}}
    # each step body ran once per occurrence, however many times the function was replayed
    assert calls["m1:first"] == 2
    assert calls["m1:second"] == 1


async def test_parallel_steps_each_run_once(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/par", "data": {"tag": "p"}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"] == 6
    assert [calls[f"p:{n}"] for n in ("p1", "p2", "p3", "after")] == [1, 1, 1, 1]


async def test_race_mode_runs_each_branch_once(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/race", "data": {}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"] == ["quick", "slow"]
    assert (calls["race:quick"], calls["race:slow"]) == (1, 1)


async def test_sleep_and_sleep_until_delay_the_run(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/sleep", "data": {"tag": "s"}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=20)
    assert 1.9 <= run["output"]["elapsed"] <= 6.0
    assert calls["s:before"] == 1 and calls["s:after"] == 1


async def test_wait_for_event_matches_on_expression(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/wait", "data": {"order": 7}}])
    await _until_running(inngest_engine, event_id)
    # Events sent before the wait is registered are never matched and there is no public signal
    # for "registered": send the non-matching event, then the matching one, until the run ends.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await send_events(
            inngest_engine, [{"name": "exec/approved", "data": {"order": 8, "by": "x"}}]
        )
        await asyncio.sleep(0.2)
        await send_events(
            inngest_engine, [{"name": "exec/approved", "data": {"order": 7, "by": "ana"}}]
        )
        runs = await runs_for_event(inngest_engine, event_id)
        if runs and runs[0]["status"] != "Running":
            break
        await asyncio.sleep(0.3)
    run = await wait_for_run(inngest_engine, event_id, timeout=10)
    assert run["output"]["by"] == "ana"  # the non-matching event never resumed it
    assert run["output"]["id"]  # the memo is the raw event (with its id)


async def test_wait_for_event_times_out_with_none(inngest_engine, app_url):
    started = time.monotonic()
    [event_id] = await send_events(
        inngest_engine, [{"name": "exec/wait", "data": {"order": 99, "timeout": 1}}]
    )
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"] is None
    assert time.monotonic() - started >= 0.9


async def test_invoke_returns_child_result(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/parent", "data": {"n": 21}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"] == {"child": {"doubled": 42}}


async def test_invoke_child_failure_raises_in_parent(inngest_engine, app_url):
    [event_id] = await send_events(
        inngest_engine, [{"name": "exec/parent", "data": {"n": 1, "fail": True}}]
    )
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"]["message"] == "child refused"


async def test_invoke_times_out(inngest_engine, app_url):
    [event_id] = await send_events(
        inngest_engine, [{"name": "exec/parent", "data": {"n": 1, "slow": True}}]
    )
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"]["error"] == "InngestInvokeTimeoutError"


async def test_invoking_an_unknown_function_fails_the_step(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/lost", "data": {}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert "exec-does-not-exist" in run["output"]["error"]


async def test_send_event_step_triggers_other_functions(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/send", "data": {}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    ids = run["output"]["ids"]
    assert len(ids) == 3
    outputs = sorted([(await wait_for_run(inngest_engine, i, timeout=15))["output"] for i in ids])
    assert outputs == [0, 1, 2]


async def test_step_retries_count_attempts_per_step(inngest_engine, app_url):
    [event_id] = await send_events(
        inngest_engine, [{"name": "exec/flaky", "data": {"tag": "f2", "fail_times": 2}}]
    )
    run = await wait_for_run(inngest_engine, event_id, timeout=20)
    assert run["output"] == "ok after 2"
    assert calls["f2:attempt"] == 3
    assert marks["f2:1"] - marks["f2:0"] >= 0.8  # --retry-interval 1


async def test_step_exhausting_retries_raises_step_error(inngest_engine, app_url):
    [event_id] = await send_events(
        inngest_engine, [{"name": "exec/flaky", "data": {"tag": "f9", "fail_times": 9}}]
    )
    run = await wait_for_run(inngest_engine, event_id, timeout=30)
    assert run["output"] == {"caught": "ValueError", "message": "boom 3"}
    assert calls["f9:attempt"] == 4  # retries=3 -> 4 attempts


async def test_non_retriable_error_fails_at_once(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/fatal", "data": {"tag": "nr"}}])
    await wait_for_run(inngest_engine, event_id, status={"Failed"}, timeout=15)
    await asyncio.sleep(1.5)
    assert calls["nr:fatal"] == 1


async def test_retry_after_is_honoured(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/later", "data": {"tag": "ra"}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=20)
    assert run["output"] == 1
    assert marks["ra:1"] - marks["ra:0"] >= 2.5


async def test_failure_emits_system_events_and_runs_on_failure(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/doomed", "data": {"tag": "d"}}])
    run = await wait_for_run(inngest_engine, event_id, status={"Failed"}, timeout=15)
    deadline = time.monotonic() + 10
    while calls["d:on_failure"] < 1 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert calls["d:on_failure"] == 1
    assert "doomed to fail" in str(marks["failure_error"])
    assert run["ended_at"] is not None


async def test_ai_infer_calls_the_provider(inngest_engine, app_url):
    [event_id] = await send_events(inngest_engine, [{"name": "exec/ai", "data": {}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    assert run["output"] == "tiny says hello (Bearer sk-test)"


async def _until_running(engine: EngineHandle, event_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        runs = await runs_for_event(engine, event_id)
        if runs and runs[0]["status"] == "Running":
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("run never started")


async def test_function_finished_event_carries_the_result(inngest_engine, app_url):
    import httpx

    [event_id] = await send_events(inngest_engine, [{"name": "exec/memo", "data": {"tag": "fin"}}])
    run = await wait_for_run(inngest_engine, event_id, timeout=15)
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=inngest_engine.base_url) as http:
        while not found and time.monotonic() < deadline:
            listed = await http.get(
                "/v1/events", params={"name": "inngest/function.finished", "limit": 50}
            )
            found = [e for e in listed.json()["data"] if e["data"].get("run_id") == run["run_id"]]
            await asyncio.sleep(0.1)
    assert len(found) == 1
    data = found[0]["data"]
    assert data["function_id"] == f"{APP}-memo"
    assert data["result"] == run["output"]
    assert data["event"]["data"]["tag"] == "fin"
