"""Benchmark the engine's step throughput, per-step latency and sleeping-run memory.

    uv run python bench/devserver_steps.py [--runs 50] [--steps 20] [--latency-steps 50]
                                           [--sleepers 10000] [--sleep-lead 40]

Against INNGEST_BASE_URL when set (e.g. a real `inngest dev`), else it starts the devserver
(`python -m devserver --in-memory`) itself. The inngest-py app runs in its own process. Prints one
JSON object per measurement; the last line is the summary. A benchmark, not a test: no asserts.
Targets on a 2-core machine: <= 5 ms per sequential step, >= 400 steps/s, <= 300 MB RSS with
10,000 sleeping runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from bench_support import emit, free_port, wait_http

APP_ID = "bench-steps"


# ------------------------------------------------------------------------------------ the app
def serve_app(port: int, engine_url: str) -> None:
    import fastapi
    import inngest
    import inngest.fast_api
    import uvicorn

    client = inngest.Inngest(
        app_id=APP_ID,
        is_production=False,
        api_base_url=engine_url,
        event_api_base_url=engine_url,
        event_key="bench",
    )
    done = {"sleepers": 0, "runs": 0}

    @client.create_function(
        fn_id="steps", trigger=inngest.TriggerEvent(event="bench/steps"), retries=0
    )
    async def steps(ctx: inngest.Context) -> Any:
        stamps = []
        for i in range(int(ctx.event.data["steps"])):

            async def stamp() -> float:
                return time.time()

            stamps.append(await ctx.step.run(f"s{i}", stamp))

        async def finish() -> float:
            done["runs"] += 1
            return time.time()

        end = await ctx.step.run("finish", finish)
        return {"first": stamps[0], "last": stamps[-1], "end": end, "n": len(stamps)}

    @client.create_function(
        fn_id="sleeper", trigger=inngest.TriggerEvent(event="bench/sleep"), retries=0
    )
    async def sleeper(ctx: inngest.Context) -> Any:
        import datetime

        wake = datetime.datetime.fromtimestamp(ctx.event.data["wake_at"], tz=datetime.UTC)
        await ctx.step.sleep_until("nap", wake)

        async def woke() -> float:
            done["sleepers"] += 1
            return time.time()

        return await ctx.step.run("woke", woke)

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [steps, sleeper])

    @app.get("/count")
    async def count() -> dict[str, int]:
        return done

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


# ------------------------------------------------------------------------------------ driver


def rss_mb(pid: int | None, field: str = "VmRSS") -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def send(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for offset in range(0, len(events), 500):
        response = await http.post("/e/bench", json=events[offset : offset + 500])
        response.raise_for_status()
        ids.extend(response.json()["ids"])
    return ids


async def run_output(http: httpx.AsyncClient, event_id: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = (await http.get(f"/v1/events/{event_id}/runs")).json()["data"]
        for run in runs:
            if run["status"] == "Completed":
                return (
                    run.get("output")
                    or (await http.get(f"/v1/runs/{run['run_id']}")).json()["data"]["output"]
                )
            if run["status"] in ("Failed", "Cancelled"):
                raise RuntimeError(f"run {run['run_id']} {run['status']}")
        await asyncio.sleep(0.2)
    raise TimeoutError(event_id)


async def wait_count(app_url: str, key: str, target: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if (await http.get(app_url + "/count")).json()[key] >= target:
                return time.time()
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{key} did not reach {target}")


async def main_async(
    args: argparse.Namespace, engine_url: str, app_url: str, engine_pid: int | None
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=engine_url, timeout=60) as http:
        async with httpx.AsyncClient(timeout=60) as plain:
            response = await plain.put(app_url + "/api/inngest")
            response.raise_for_status()

        # 1. one run, K sequential steps: per-step latency measured inside the app
        [event_id] = await send(http, [{"name": "bench/steps", "data": {"steps": 5}}])
        await run_output(http, event_id)  # warm-up
        [event_id] = await send(
            http, [{"name": "bench/steps", "data": {"steps": args.latency_steps}}]
        )
        output = await run_output(http, event_id)
        per_step_ms = (output["last"] - output["first"]) / (output["n"] - 1) * 1000
        emit(
            {
                "measure": "sequential_step_latency",
                "steps": output["n"],
                "per_step_ms": round(per_step_ms, 2),
            }
        )

        # 2. N runs x K steps: throughput
        before = (await plain_count(app_url))["runs"]
        started = time.time()
        await send(
            http, [{"name": "bench/steps", "data": {"steps": args.steps}} for _ in range(args.runs)]
        )
        ended = await wait_count(app_url, "runs", before + args.runs, 600)
        total_steps = args.runs * (args.steps + 1)
        steps_per_s = total_steps / (ended - started)
        emit(
            {
                "measure": "throughput",
                "runs": args.runs,
                "steps_per_run": args.steps + 1,
                "seconds": round(ended - started, 2),
                "steps_per_s": round(steps_per_s, 1),
            }
        )

        # 3. many sleeping runs: peak RSS while they sleep, then time for all to resume
        peak = rss_mb(engine_pid)
        wake_at = time.time() + args.sleep_lead
        sent_at = time.time()
        await send(
            http,
            [{"name": "bench/sleep", "data": {"wake_at": wake_at}} for _ in range(args.sleepers)],
        )
        accepted = time.time() - sent_at
        while time.time() < wake_at:
            current = rss_mb(engine_pid)
            if current is not None and (peak is None or current > peak):
                peak = current
            await asyncio.sleep(0.2)
        resumed_at = await wait_count(app_url, "sleepers", args.sleepers, 900)
        emit(
            {
                "measure": "sleeping_runs",
                "runs": args.sleepers,
                "events_accepted_s": round(accepted, 2),
                "peak_rss_mb_while_sleeping": peak,
                "resume_all_s": round(resumed_at - wake_at, 2),
                "hwm_rss_mb": rss_mb(engine_pid, "VmHWM"),
            }
        )
        return {
            "per_step_ms": round(per_step_ms, 2),
            "steps_per_s": round(steps_per_s, 1),
            "sleepers": args.sleepers,
            "peak_rss_mb": peak,
            "resume_all_s": round(resumed_at - wake_at, 2),
        }


async def plain_count(app_url: str) -> dict[str, int]:
    async with httpx.AsyncClient() as http:
        result: dict[str, int] = (await http.get(app_url + "/count")).json()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latency-steps", type=int, default=50)
    parser.add_argument("--sleepers", type=int, default=10_000)
    parser.add_argument(
        "--sleep-lead",
        type=float,
        default=40.0,
        help="seconds between sending the sleepers and their wake time",
    )
    parser.add_argument("--serve-app", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        serve_app(args.serve_app, args.engine_url)
        return

    processes: list[subprocess.Popen[bytes]] = []
    child_env = dict(os.environ)
    child_env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode: faster starts
    engine_url = os.environ.get("INNGEST_BASE_URL", "").rstrip("/")
    engine_pid = None
    try:
        if not engine_url:
            port = free_port()
            engine = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devserver",
                    "--in-memory",
                    "--no-discovery",
                    "--no-poll",
                    "--port",
                    str(port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=child_env,
            )
            processes.append(engine)
            engine_url = f"http://127.0.0.1:{port}"
            engine_pid = engine.pid
            wait_http(engine_url + "/health", timeout=120)
        app_port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve-app",
                    str(app_port),
                    "--engine-url",
                    engine_url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=child_env,
            )
        )
        app_url = f"http://127.0.0.1:{app_port}"
        wait_http(app_url + "/count", timeout=120)
        summary = asyncio.run(main_async(args, engine_url, app_url, engine_pid))
        summary["engine"] = "devserver" if engine_pid else engine_url
        emit({"summary": summary})
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
