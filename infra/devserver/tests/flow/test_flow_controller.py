"""FlowController decisions with an explicit clock and no engine (admission, acquire, release).

Paths that create runs themselves (debounce, batching, singleton) need the engine and are covered
by the engine tests; here: rate limit / idempotency, run keys, priority, concurrency, throttle.
"""

from __future__ import annotations

from typing import Any

from devserver.flow.control import SWEEP_INTERVAL_MS, FlowController
from devserver.hooks import FunctionView, JobView


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def function(slug: str = "app-fn", **config: Any) -> FunctionView:
    return FunctionView(slug=slug, uuid="u", app_name="app", config={"id": slug, **config})


def event(n: int, **data: Any) -> dict[str, Any]:
    return {"name": "a/b", "id": f"e{n}", "_internal_id": f"i{n}", "data": data}


def job(run: str, keys: Any, *, kind: str = "start", slug: str = "app-fn") -> JobView:
    return JobView(
        job_id=f"job-{run}-{kind}",
        run_id=run,
        function_slug=slug,
        kind=kind,
        queued_at_ms=0,
        run_keys=keys,
    )


async def test_plain_functions_take_the_fast_path() -> None:
    flow = FlowController(None)
    admission = await flow.admit_event(function(), [event(1)], origin="event")
    assert (admission.action, dict(admission.run_keys), admission.priority_ms) == ("run", {}, 0)


async def test_rate_limit_and_idempotency_admission() -> None:
    clock = Clock()
    flow = FlowController(None, clock=clock)
    fn = function(idempotency="event.data.order")
    first = await flow.admit_event(fn, [event(1, order="o1")], origin="event")
    again = await flow.admit_event(fn, [event(2, order="o1")], origin="event")
    other = await flow.admit_event(fn, [event(3, order="o2")], origin="event")
    no_key = await flow.admit_event(fn, [event(4)], origin="event")
    rerun = await flow.admit_event(fn, [event(5, order="o1")], origin="rerun")
    assert [a.action for a in (first, again, other, no_key, rerun)] == [
        "run",
        "drop",
        "run",
        "run",
        "run",
    ]
    assert again.reason is not None and "idempotency key already used" in again.reason
    # the same event evaluated again (reprocessed after a crash) is not its own duplicate
    replay = await flow.admit_event(fn, [event(3, order="o2")], origin="event")
    assert replay.action == "run"
    clock.now += 24 * 3600 * 1000 + 1
    assert (await flow.admit_event(fn, [event(6, order="o1")], origin="event")).action == "run"


async def test_idle_rate_limit_buckets_are_swept() -> None:
    clock = Clock()
    flow = FlowController(None, clock=clock)
    fn = function(rateLimit={"limit": 1, "period": "1s", "key": "event.data.k"})
    for n in range(50):
        await flow.admit_event(fn, [event(n, k=f"key{n}")], origin="event")
    assert len(flow.state.items("rate_limit")) >= 49
    clock.now += SWEEP_INTERVAL_MS + 2000
    await flow.admit_event(fn, [event(99, k="fresh")], origin="event")
    assert [key for key, _ in flow.state.items("rate_limit")] == ["app-fn-fresh"]


async def test_run_keys_and_priority_are_evaluated_once_per_run() -> None:
    flow = FlowController(None)
    fn = function(
        concurrency=[{"limit": 2, "key": "event.data.customer"}, {"limit": 10}],
        throttle={"limit": 5, "period": "1m", "burst": 1, "key": "event.data.customer"},
        priority={"run": "event.data.tier == 'enterprise' ? 120 : 0"},
    )
    admission = await flow.admit_event(
        fn, [event(1, customer="c1", tier="enterprise")], origin="event"
    )
    assert admission.priority_ms == 120_000
    assert admission.run_keys == {
        "c": [["f:app-fn:c1", 2], ["fn:app-fn", 10]],
        "t": ["app-fn-c1", 5, 60_000, 1],
    }


async def test_acquire_respects_every_concurrency_limit_and_release_frees_slots() -> None:
    flow = FlowController(None)
    keys_a = {"c": [["f:fn:a", 2], ["fn:fn", 3]]}
    keys_b = {"c": [["f:fn:b", 2], ["fn:fn", 3]]}
    assert await flow.acquire(job("r1", keys_a), 0) is True
    assert await flow.acquire(job("r2", keys_a), 0) is True
    assert await flow.acquire(job("r3", keys_a), 0) is False  # per-key limit
    assert await flow.acquire(job("r4", keys_b), 0) is True
    assert await flow.acquire(job("r5", keys_b), 0) is False  # function-wide limit
    assert "f:fn:a" in flow.describe("app-fn")["waiting"]["r3"]
    assert flow.waiting_reason("r3", "app-fn") == "concurrency limit reached on f:fn:a"
    await flow.release(job("r1", keys_a))
    assert await flow.acquire(job("r3", keys_a), 0) is True
    assert flow.describe("app-fn")["running"] == 3
    assert "r3" not in flow.describe("app-fn")["waiting"]
    assert flow.waiting_reason("r3", "app-fn") is None


async def test_throttle_delays_start_jobs_only() -> None:
    flow = FlowController(None)
    keys = {"t": ["fn", 1, 1000, 1]}  # 1 per second, burst 1: two at once
    assert await flow.acquire(job("r1", keys), 0) is True
    assert await flow.acquire(job("r2", keys), 0) is True
    retry_at = await flow.acquire(job("r3", keys), 0)
    assert retry_at == 1000
    assert await flow.acquire(job("r1", keys, kind="step"), 0) is True  # steps are not throttled
    assert await flow.acquire(job("r3", keys), 1000) is True
