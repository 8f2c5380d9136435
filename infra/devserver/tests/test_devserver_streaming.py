"""Streaming SDK responses (201 + keep-alive bytes + an envelope) are unwrapped
(infra/devserver/docs/calls.md#streaming-responses)."""

from __future__ import annotations

from typing import Any

import inngest
from devserver.testing import make_client, running_app, send_events, wait_for_run
from inngest._internal.const import Streaming


async def test_streamed_responses_drive_the_run(inngest_engine) -> None:
    client = make_client(inngest_engine, "streaming-app")
    attempts: list[int] = []

    @client.create_function(
        fn_id="streamed", trigger=inngest.TriggerEvent(event="stream/go"), retries=1
    )
    async def streamed(ctx: inngest.Context) -> Any:
        async def step() -> int:
            attempts.append(ctx.attempt)
            if ctx.attempt == 0:
                raise ValueError("first attempt fails")
            return 20

        return await ctx.step.run("s", step) + 1

    async with running_app(inngest_engine, client, [streamed], streaming=Streaming.FORCE):
        [event_id] = await send_events(inngest_engine, [{"name": "stream/go", "data": {}}])
        run = await wait_for_run(inngest_engine, event_id, timeout=20)
    assert run["output"] == 21
    assert attempts == [0, 1]  # the streamed StepError was seen and retried
