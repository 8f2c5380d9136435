"""Smoke test: a real inngest-py app with two steps runs to completion on the devserver."""

import inngest
from devserver.testing import make_client, running_app, send_events, wait_for_run


async def test_steps_run_and_complete(inngest_engine):
    client = make_client(inngest_engine, "smoke")
    calls = {"a": 0, "b": 0}

    @client.create_function(fn_id="two-steps", trigger=inngest.TriggerEvent(event="smoke/go"))
    async def two_steps(ctx: inngest.Context) -> dict:
        async def a() -> int:
            calls["a"] += 1
            return 1

        async def b() -> int:
            calls["b"] += 1
            return 2

        x = await ctx.step.run("a", a)
        y = await ctx.step.run("b", b)
        return {"sum": x + y + ctx.event.data["n"]}

    async with running_app(inngest_engine, client, [two_steps]):
        [event_id] = await send_events(inngest_engine, [{"name": "smoke/go", "data": {"n": 3}}])
        run = await wait_for_run(inngest_engine, event_id, timeout=10)
    assert run["output"] == {"sum": 6}
    assert calls == {"a": 1, "b": 1}
