"""The CLI against a real engine: the devserver (or INNGEST_BASE_URL), a real inngest-py app.

Proves the commands speak the engine's actual REST API: send -> run, runs list, rerun every
failed run from the top after a fix, bulk cancel of sleeping runs by expression.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import inngest
from devserver.testing import get_run, make_client, serve_app, sync_app, wait_for_run_id
from engine_client import EngineClient
from fastapi import FastAPI
from inngest.fast_api import serve
from nerve_cli.main import app as cli
from typer.testing import CliRunner

pytest_plugins = ["devserver.testing"]
runner = CliRunner()


def build_app(engine: Any, app_id: str, state: dict[str, Any]) -> FastAPI:
    client = make_client(engine, app_id)

    @client.create_function(
        fn_id="flaky",
        trigger=inngest.TriggerEvent(event="ticket/resolved"),
        retries=0,
    )
    async def flaky(ctx: inngest.Context) -> str:
        async def first() -> str:
            state["first_calls"] = state.get("first_calls", 0) + 1
            return "ok"

        await ctx.step.run("first", first)

        def second() -> str:
            if state.get("broken", True):
                raise ValueError("agent down")
            return "fixed"

        return await ctx.step.run("second", second)

    @client.create_function(
        fn_id="sleeper", trigger=inngest.TriggerEvent(event="support/draft.created")
    )
    async def sleeper(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", timedelta(minutes=10))
        return "woke"

    api = FastAPI()
    serve(api, client, [flaky, sleeper])
    return api


def cli_args(engine: Any, *args: str) -> list[str]:
    return [*args, "--engine-url", engine.base_url, "--event-key", engine.event_key]


async def poll(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def test_send_list_rerun_and_bulk_cancel_against_the_engine(inngest_engine: Any) -> None:
    app_id = f"cli-{uuid.uuid4().hex[:8]}"
    state: dict[str, Any] = {}
    with serve_app(build_app(inngest_engine, app_id, state)) as base:
        await sync_app(inngest_engine, f"{base}/api/inngest")
        flaky = f"{app_id}/flaky"
        for index in range(3):
            # the first send waits: it recognises the run's end (FAILED: exit 1) and reports it
            wait = ["--wait", "--timeout", "30", "--json"] if index == 0 else []
            result = await asyncio.to_thread(
                runner.invoke,
                cli,
                cli_args(
                    inngest_engine,
                    "send",
                    "ticket/resolved",
                    "-f",
                    f"ticket_id=t-{app_id}-{index}",
                    "-f",
                    "customer_id=cust_001",
                    "-f",
                    "resolved_by=cli",
                    *wait,
                ),
            )
            if not wait:
                assert result.exit_code == 0, result.output
                continue
            assert result.exit_code == 1, result.output
            report = json.loads(result.stdout)
            [waited] = [r for r in report["runs"] if r["app_id"] == app_id]
            assert (waited["function_id"], waited["status"]) == ("flaky", "FAILED")
            assert waited["ended_at"] and waited["ended_at"].endswith("Z")

        engine = EngineClient(inngest_engine.base_url, event_key=inngest_engine.event_key)
        failed = await poll(
            lambda: (
                len(r := engine.list_runs(app_id=app_id, function_id="flaky", status=["FAILED"]))
                == 3
                and r
            )
        )
        listed = await asyncio.to_thread(
            runner.invoke, cli, cli_args(inngest_engine, "runs", "list", "--function", flaky)
        )
        assert listed.exit_code == 0 and all(run.run_id in listed.output for run in failed)

        inspected = await asyncio.to_thread(
            runner.invoke, cli, cli_args(inngest_engine, "runs", "inspect", failed[0].run_id)
        )
        assert inspected.exit_code == 0, inspected.output
        assert "status=FAILED" in inspected.output
        assert "first" in inspected.output and "second" in inspected.output

        state["broken"] = False  # the fix
        rerun = await asyncio.to_thread(
            runner.invoke,
            cli,
            cli_args(inngest_engine, "rerun", "--function", flaky, "--since", "10m"),
        )
        assert rerun.exit_code == 0, rerun.output
        assert "3 rerun(s) started" in rerun.output
        new_ids = [
            line.split(" -> ")[1].strip() for line in rerun.output.splitlines() if " -> " in line
        ]
        assert len(new_ids) == 3
        for run_id in new_ids:
            done = await wait_for_run_id(inngest_engine, run_id, status={"Completed"}, timeout=20)
            assert done["output"] == "fixed"

        # bulk cancel: sleeping runs of one customer only
        for customer in ("cust_001", "cust_001", "cust_002"):
            sent = await asyncio.to_thread(
                runner.invoke,
                cli,
                cli_args(
                    inngest_engine,
                    "send",
                    "support/draft.created",
                    "-f",
                    f"draft_id=d-{uuid.uuid4().hex[:6]}",
                    "-f",
                    f"customer_id={customer}",
                ),
            )
            assert sent.exit_code == 0, sent.output

        def sleepers(status: str) -> list[Any]:
            return engine.list_runs(app_id=app_id, function_id="sleeper", status=[status])

        await poll(lambda: len(sleepers("RUNNING")) == 3)
        cancelled = await asyncio.to_thread(
            runner.invoke,
            cli,
            cli_args(
                inngest_engine,
                "cancel",
                "--function",
                f"{app_id}/sleeper",
                "--since",
                "10m",
                "--if",
                "event.data.customer_id == 'cust_001'",
            ),
        )
        assert cancelled.exit_code == 0, cancelled.output
        assert "2 run(s) cancelled" in cancelled.output
        runs = await poll(lambda: len(r := sleepers("CANCELLED")) == 2 and r)
        assert len(runs) == 2
        still = sleepers("RUNNING")
        assert len(still) == 1
        detail = await get_run(inngest_engine, still[0].run_id)
        assert detail["status"] == "Running"
        engine.close()
