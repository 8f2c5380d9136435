"""Benchmark flow-control scheduling overhead: a 1,000-run burst with keyed concurrency.

    uv run python bench/devserver_flow.py [--runs 1000] [--customers 200] [--per-key 2]
                                          [--fn-limit 100] [--idle 30]

Against INNGEST_BASE_URL when set, else it starts the devserver (`python -m devserver
--in-memory`) itself. The inngest-py app runs in its own process. Two functions receive the same
burst: `plain` (no flow control) and `keyed` (concurrency: `--fn-limit` for the function and
`--per-key` per `event.data.customer`). For each run the app records when its first step starts;
the figure is event sent -> first step (p50/p99/max), plus burst completion time and the highest
per-customer parallelism observed (must never exceed `--per-key`). Before the burst, `--idle`
events are sent one at a time to each function: the same figure without a backlog, i.e. the
per-event scheduling overhead. Prints one JSON object per
scenario; the last line is the summary. A benchmark, not a test: no asserts.
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

APP_ID = "bench-flow"


# ------------------------------------------------------------------------------------ the app
def serve_app(port: int, engine_url: str, fn_limit: int, per_key: int) -> None:
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
    first_step: dict[str, dict[str, float]] = {"plain": {}, "keyed": {}}
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {"keyed": 0}

    def make(fn_id: str, **options: Any) -> Any:
        @client.create_function(
            fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"bench/{fn_id}"), **options
        )
        async def handler(ctx: inngest.Context) -> Any:
            customer = str(ctx.event.data["customer"])

            async def work() -> float:
                started = time.time()
                first_step[fn_id].setdefault(str(ctx.event.data["n"]), started)
                if fn_id == "keyed":
                    in_flight[customer] = in_flight.get(customer, 0) + 1
                    peak["keyed"] = max(peak["keyed"], in_flight[customer])
                    await asyncio.sleep(0.005)  # a step that takes a little time
                    in_flight[customer] -= 1
                return started

            return await ctx.step.run("work", work)

        return handler

    functions = [
        make("plain"),
        make(
            "keyed",
            concurrency=[
                inngest.Concurrency(limit=fn_limit),
                inngest.Concurrency(limit=per_key, key="event.data.customer"),
            ],
        ),
    ]
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, functions)

    @app.get("/stats/{fn_id}")
    async def stats(fn_id: str) -> dict[str, Any]:
        return {"first_step": first_step[fn_id], "peak_per_key": peak.get(fn_id, 0)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


# ------------------------------------------------------------------------------------ driver


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def scenario(
    http: httpx.AsyncClient, app_url: str, fn_id: str, args: argparse.Namespace
) -> dict[str, Any]:
    events = [
        {"name": f"bench/{fn_id}", "data": {"n": n, "customer": f"c{n % args.customers}"}}
        for n in range(args.runs)
    ]
    sent_at: dict[str, float] = {}
    started = time.time()
    for offset in range(0, len(events), 500):
        chunk = events[offset : offset + 500]
        now = time.time()
        response = await http.post("/e/bench", json=chunk)
        response.raise_for_status()
        for event in chunk:
            sent_at[str(event["data"]["n"])] = now
    deadline = time.monotonic() + 600
    async with httpx.AsyncClient(timeout=60) as plain:
        while True:
            body = (await plain.get(f"{app_url}/stats/{fn_id}")).json()
            firsts = {n: at for n, at in body["first_step"].items() if n in sent_at}
            if len(firsts) >= args.runs or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    latencies = [(firsts[n] - sent_at[n]) * 1000 for n in firsts]
    record = {
        "scenario": fn_id,
        "runs": args.runs,
        "started_runs": len(firsts),
        "event_to_first_step_ms_p50": round(percentile(latencies, 0.50), 1),
        "event_to_first_step_ms_p99": round(percentile(latencies, 0.99), 1),
        "event_to_first_step_ms_max": round(max(latencies), 1),
        "all_first_steps_s": round(max(firsts.values()) - started, 2),
    }
    if fn_id == "keyed":
        record.update(
            customers=args.customers,
            per_key_limit=args.per_key,
            fn_limit=args.fn_limit,
            peak_parallel_per_customer=body["peak_per_key"],
        )
    emit(record)
    return record


async def idle_latency(
    http: httpx.AsyncClient, app_url: str, fn_id: str, count: int
) -> dict[str, Any]:
    """Event -> first step for events sent one at a time to an idle engine (no backlog)."""
    latencies = []
    async with httpx.AsyncClient(timeout=60) as plain:
        for i in range(count):
            n = f"idle-{i}"
            sent = time.time()
            event = {"name": f"bench/{fn_id}", "data": {"n": n, "customer": f"idle{i % 3}"}}
            (await http.post("/e/bench", json=[event])).raise_for_status()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                firsts = (await plain.get(f"{app_url}/stats/{fn_id}")).json()["first_step"]
                if n in firsts:
                    latencies.append((firsts[n] - sent) * 1000)
                    break
                await asyncio.sleep(0.005)
    record = {
        "scenario": f"{fn_id}_idle",
        "events": count,
        "event_to_first_step_ms_p50": round(percentile(latencies, 0.50), 1),
        "event_to_first_step_ms_p99": round(percentile(latencies, 0.99), 1),
    }
    emit(record)
    return record


async def main_async(args: argparse.Namespace, engine_url: str, app_url: str) -> None:
    async with httpx.AsyncClient(timeout=60) as plain:
        (await plain.put(app_url + "/api/inngest")).raise_for_status()
    async with httpx.AsyncClient(base_url=engine_url, timeout=120) as http:
        warm = [{"name": "bench/plain", "data": {"n": "warm-up", "customer": "warm"}}]
        (await http.post("/e/bench", json=warm)).raise_for_status()
        await asyncio.sleep(1.0)
        idle = {
            fn_id: await idle_latency(http, app_url, fn_id, args.idle)
            for fn_id in ("plain", "keyed")
        }
        results = {}
        for fn_id in ("plain", "keyed"):
            results[fn_id] = await scenario(http, app_url, fn_id, args)
    keyed, plain_run = results["keyed"], results["plain"]
    emit(
        {
            "summary": "devserver_flow",
            "runs": args.runs,
            "idle_plain_p50_ms": idle["plain"]["event_to_first_step_ms_p50"],
            "idle_keyed_p50_ms": idle["keyed"]["event_to_first_step_ms_p50"],
            "idle_keyed_p99_ms": idle["keyed"]["event_to_first_step_ms_p99"],
            "keyed_p50_ms": keyed["event_to_first_step_ms_p50"],
            "keyed_p99_ms": keyed["event_to_first_step_ms_p99"],
            "plain_p50_ms": plain_run["event_to_first_step_ms_p50"],
            "plain_p99_ms": plain_run["event_to_first_step_ms_p99"],
            "keyed_burst_s": keyed["all_first_steps_s"],
            "plain_burst_s": plain_run["all_first_steps_s"],
            "peak_parallel_per_customer": keyed["peak_parallel_per_customer"],
            "per_key_limit": args.per_key,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--per-key", type=int, default=2)
    parser.add_argument("--fn-limit", type=int, default=100)
    parser.add_argument("--idle", type=int, default=30, help="events sent one at a time first")
    parser.add_argument("--serve-app", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        serve_app(args.serve_app, args.engine_url, args.fn_limit, args.per_key)
        return
    engine_url = os.environ.get("INNGEST_BASE_URL", "").rstrip("/")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if not engine_url:
            port = free_port()
            engine_url = f"http://127.0.0.1:{port}"
            processes.append(
                subprocess.Popen(
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
                )
            )
            wait_http(engine_url + "/health", timeout=180)
        app_port = free_port()
        app_url = f"http://127.0.0.1:{app_port}"
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve-app",
                    str(app_port),
                    "--engine-url",
                    engine_url,
                    "--fn-limit",
                    str(args.fn_limit),
                    "--per-key",
                    str(args.per_key),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        wait_http(app_url + "/api/inngest", timeout=180)
        asyncio.run(main_async(args, engine_url, app_url))
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
