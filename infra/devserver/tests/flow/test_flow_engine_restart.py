"""Flow state survives a devserver crash (SIGKILL) and restart: buffered debounce events, open
batches and idempotency keys are stored in the devserver database, not only in memory."""

from __future__ import annotations

import asyncio
import datetime
import time
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    runs_for_event,
    send_events,
    start_devserver,
    wait_for_run,
)

SECOND = datetime.timedelta(seconds=1)


async def _flow(engine: EngineHandle, app_id: str, fn_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{engine.base_url}/v2/apps/{app_id}/functions/{fn_id}/flow")
    data: dict[str, Any] = response.json()["data"]
    return data


async def _until(probe: Any, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not reached")


@pytest.mark.devserver_only
@pytest.mark.slow  # two devserver process starts
async def test_debounce_batch_and_idempotency_survive_a_crash(
    tmp_path: Path, recorder: Any, app_id: str
) -> None:
    server = start_devserver(
        "--database-url",
        f"sqlite:///{tmp_path / 'devserver.db'}",
        "--no-discovery",
        "--no-poll",
        "--retry-interval",
        "1",
    )
    engine = EngineHandle(base_url=server.base_url)
    try:
        client = make_client(engine, app_id)

        def make(fn_id: str, **options: Any) -> inngest.Function[Any]:
            @client.create_function(
                fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"{app_id}/{fn_id}"), **options
            )
            async def handler(ctx: inngest.Context) -> Any:
                async def body() -> None:
                    recorder.mark(fn=fn_id, n=[e.data.get("n") for e in ctx.events])

                await ctx.step.run("record", body)

            return handler

        functions = [
            make("deb", debounce=inngest.Debounce(period=5 * SECOND)),
            make("bat", batch_events=inngest.Batch(max_size=10, timeout=5 * SECOND)),
            make("idem", idempotency="event.data.order"),
        ]
        async with running_app(engine, client, functions):
            first = await send_events(
                engine, [{"name": f"{app_id}/idem", "data": {"order": "o1", "n": 1}}]
            )
            await wait_for_run(engine, first[0], timeout=10)
            debounced = await send_events(engine, [{"name": f"{app_id}/deb", "data": {"n": 1}}])
            batched = await send_events(
                engine, [{"name": f"{app_id}/bat", "data": {"n": n}} for n in (1, 2)]
            )

            async def buffered() -> bool:
                deb = await _flow(engine, app_id, "deb")
                bat = await _flow(engine, app_id, "bat")
                return bool(deb["debouncing"]) and sum(bat["open_batches"].values()) == 2

            await _until(buffered)
            server.kill()
            server.start()
            again = await send_events(
                engine, [{"name": f"{app_id}/idem", "data": {"order": "o1", "n": 2}}]
            )
            await wait_for_run(engine, debounced[0], timeout=20)
            for event_id in batched:
                await wait_for_run(engine, event_id, timeout=20)
            await asyncio.sleep(0.5)
            skipped = await runs_for_event(engine, again[0])
    finally:
        server.stop()
    ran = sorted((info["fn"], info["n"]) for _, info in recorder.marks)
    assert ran == [("bat", [1, 2]), ("deb", [1]), ("idem", [1])]
    assert [run["status"] for run in skipped] == ["Skipped"]
