"""FlowControl for the devserver engine (hook protocol in devserver.hooks, FLOW_HOOKS.md).

Order of decisions for an incoming event, as in the server's `schedule`
(infra/devserver/docs/flow-control.md#order-of-decisions):
rate limit / idempotency (drop) -> debounce (defer) -> batching (defer) -> singleton (skip or
cancel the active run) -> run, with concurrency keys, throttle key and priority evaluated once
against the run's first event and carried on every job as `run_keys`.

At dequeue (`acquire`): a job starts only when it fits under every concurrency limit of its run
(in-flight SDK calls; sleeping/waiting runs hold nothing); a run's start job must also pass the
throttle GCRA, otherwise it is offered again at the time GCRA names. Nothing is ever dropped
there: over-limit work waits in the engine's queue, ordered by (priority-adjusted) queue time.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from devserver.flow.buffers import BatchState, DebounceState, append_to_batch, debounce
from devserver.flow.config import FlowConfig, FlowConfigError, parse_flow_config, validation_error
from devserver.flow.keys import (
    batch_applies,
    batch_key,
    concurrency_key,
    debounce_key,
    limited_key,
    priority_factor_s,
    throttle_key,
)
from devserver.flow.limits import ConcurrencyCounters, gcra, rate_limit_burst, throttle_burst
from devserver.flow.state import FlowState, Writer
from devserver.hooks import RUN, AcquireResult, Admission, FlowEngine, FunctionView, JobView
from devserver.util import new_ulid, now_ms

log = logging.getLogger("devserver.flow")


def _event_id(event: Mapping[str, Any]) -> str:
    return str(event.get("_internal_id") or event.get("id") or "")


SWEEP_INTERVAL_MS = 60_000

# Origins whose events go through rate limit, debounce and batching; reruns and runs created by
# flow control itself skip them (infra/devserver/docs/flow-control.md#rate-limit).
FRESH_ORIGINS = frozenset({"event", "invoke", "cron"})


class FlowController:
    def __init__(
        self,
        engine: FlowEngine | None,
        *,
        store: Writer | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.state = FlowState(store)
        self.counters = ConcurrencyCounters()
        self._configs: dict[str, tuple[Mapping[str, Any], FlowConfig]] = {}
        self._singleton_of_run: dict[str, str] = {}
        self._key_functions: dict[str, set[str]] = {}  # concurrency key -> function slugs
        self._job_function: dict[str, str] = {}  # acquired job id -> function slug
        self._running: dict[str, int] = {}  # function slug -> in-flight SDK calls
        self._waiting: dict[str, dict[str, str]] = {}  # slug -> run id -> why its job waits
        self._background: set[asyncio.Task[None]] = set()
        self._next_sweep_ms = 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.state.load()
        for key, holder in self.state.items("singleton"):
            self._singleton_of_run[str(holder["run_id"])] = key
        if self.engine is not None:
            # Buffers whose run was created just before a crash, or whose timer was lost, fire
            # again; timers the engine restored are replaced by identical ones.
            for kind in ("debounce", "batch"):
                for key, value in self.state.items(kind):
                    await self._arm(kind, key, value)

    def validate_function(self, config: Mapping[str, Any]) -> str | None:
        return validation_error(config)

    def config_of(self, slug: str, config: Mapping[str, Any]) -> FlowConfig:
        cached = self._configs.get(slug)
        if cached is not None and cached[0] is config:
            return cached[1]
        try:
            parsed = parse_flow_config(config)
        except (FlowConfigError, AttributeError, TypeError):
            log.warning("unusable flow-control settings on %s; running without them", slug)
            parsed = FlowConfig()
        self._configs[slug] = (config, parsed)
        return parsed

    # --- admission -------------------------------------------------------------------------------

    async def admit_event(
        self, function: FunctionView, events: list[dict[str, Any]], *, origin: str
    ) -> Admission:
        flow = self.config_of(function.slug, function.config)
        if flow.is_plain or not events:
            return RUN
        slug, event, now = function.slug, events[0], self.clock()
        if origin in FRESH_ORIGINS and flow.rate_limit is not None:
            dropped = await self._rate_limited(slug, flow, event, now)
            if dropped is not None:
                return Admission("drop", reason=dropped)
        if origin in FRESH_ORIGINS and flow.debounce is not None:
            await self._debounce(function, flow, event, now)
            return Admission("defer", reason="debounced")
        if (
            origin == "event"
            and flow.batch is not None
            and batch_applies(flow.batch.if_expression, event)
        ):
            await self._batch(function, flow, event, now)
            return Admission("defer", reason="batched")
        return await self._schedule(slug, flow, events, singleton=origin != "rerun")

    async def _rate_limited(
        self, slug: str, flow: FlowConfig, event: Mapping[str, Any], now: int
    ) -> str | None:
        assert flow.rate_limit is not None
        key = limited_key(flow.rate_limit.key, event, function_slug=slug)
        if key is None:
            return None  # key evaluated to false / missing: not rate limited
        stored = self.state.get("rate_limit", key) or {}
        event_id = _event_id(event)
        if event_id and stored.get("event") == event_id:
            return None  # the same event evaluated again (reprocessed after a restart)
        decision = gcra(
            stored.get("tat"),
            now,
            period_ms=flow.rate_limit.period_ms,
            limit=flow.rate_limit.limit,
            burst=rate_limit_burst(flow.rate_limit.limit),
        )
        if not decision.allowed:
            idempotency = flow.rate_limit.idempotency
            what = "idempotency key already used" if idempotency else "rate limited"
            return f"{what} ({key})"
        value = {"tat": decision.tat_ms, "event": event_id}
        await self.state.put("rate_limit", key, value, now_ms=now)
        await self._maybe_sweep(now)
        return None

    async def _maybe_sweep(self, now: int) -> None:
        """GCRA buckets whose arrival time has passed are idle: equivalent to absent. Dropping
        them keeps per-key state (one idempotency key per order...) from growing forever."""
        if now < self._next_sweep_ms:
            return
        self._next_sweep_ms = now + SWEEP_INTERVAL_MS
        idle = [key for key, value in self.state.items("rate_limit") if value["tat"] <= now]
        await self.state.sweep("rate_limit", idle)
        idle = [key for key, tat in self.state.items("throttle") if tat <= now]
        await self.state.sweep("throttle", idle)

    def run_keys(self, slug: str, flow: FlowConfig, event: Mapping[str, Any]) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        if flow.concurrency:
            pairs = []
            for limit in flow.concurrency:
                key = concurrency_key(limit, event, function_slug=slug)
                pairs.append([key, limit.limit])
                self._key_functions.setdefault(key, set()).add(slug)
            keys["c"] = pairs
        if flow.throttle is not None:
            t = flow.throttle
            keys["t"] = [
                throttle_key(t.key, event, function_slug=slug),
                t.limit,
                t.period_ms,
                t.burst,
            ]
        return keys

    async def _schedule(
        self,
        slug: str,
        flow: FlowConfig,
        events: list[dict[str, Any]],
        *,
        singleton: bool,
        deferred: bool = False,
        batch_id: str | None = None,
    ) -> Admission:
        event = events[0]
        keys = self.run_keys(slug, flow, event)
        priority_ms = priority_factor_s(flow.priority_run, event) * 1000
        lock = None
        if singleton and flow.singleton is not None:
            lock = limited_key(flow.singleton.key, event, function_slug=slug)
        if lock is None and not deferred:
            return Admission("run", run_keys=keys, priority_ms=priority_ms)
        assert self.engine is not None
        if lock is not None:
            assert flow.singleton is not None
            holder = self.state.get("singleton", lock)
            if holder is not None and holder.get("event") == _event_id(event):
                return Admission("defer", reason="already scheduled")  # reprocessed event
            if holder is not None:
                if flow.singleton.mode == "skip":
                    reason = f"singleton: run {holder['run_id']} is active ({lock})"
                    if deferred:
                        log.info("debounced/batched run of %s skipped: %s", slug, reason)
                    return Admission("skip", reason=reason)
                await self.engine.cancel_run(str(holder["run_id"]), reason="singleton")
        # Created here (not by the caller) so the singleton lock knows the new run's id.
        run_id = await self.engine.create_run(
            slug, events, batch_id=batch_id, run_keys=keys, priority_ms=priority_ms
        )
        if lock is not None and run_id is not None:
            self._singleton_of_run[run_id] = lock
            holder = {"run_id": run_id, "event": _event_id(event)}
            await self.state.put("singleton", lock, holder, now_ms=self.clock())
        return Admission("defer", reason="scheduled by flow control")

    # --- debounce and batching -------------------------------------------------------------------

    async def _remember_function(self, function: FunctionView) -> None:
        stored = self.state.get("function", function.slug)
        if stored != function.config:
            await self.state.put("function", function.slug, dict(function.config), now_ms=0)

    async def _debounce(
        self, function: FunctionView, flow: FlowConfig, event: dict[str, Any], now: int
    ) -> None:
        assert flow.debounce is not None and self.engine is not None
        await self._remember_function(function)
        key = debounce_key(flow.debounce.key, event, function_slug=function.slug)
        stored = self.state.get("debounce", key)
        current = DebounceState.from_json(stored) if stored else None
        updated = debounce(
            current,
            event,
            now,
            period_ms=flow.debounce.period_ms,
            timeout_ms=flow.debounce.timeout_ms,
        )
        if updated is None:
            return  # older than the stored event: ignored
        await self.state.put(
            "debounce", key, {**updated.to_json(), "slug": function.slug}, now_ms=now
        )
        await self._arm("debounce", key, self.state.get("debounce", key))

    async def _batch(
        self, function: FunctionView, flow: FlowConfig, event: dict[str, Any], now: int
    ) -> None:
        assert flow.batch is not None and self.engine is not None
        await self._remember_function(function)
        key = batch_key(flow.batch.key, event, function_slug=function.slug)
        stored = self.state.get("batch", key)
        current = BatchState.from_json(stored) if stored else None
        decision = append_to_batch(
            current, event, now, max_size=flow.batch.max_size, new_batch_id=new_ulid()
        )
        if decision.flush is not None:
            self.state.values.get("batch", {}).pop(key, None)
            await self._schedule(
                function.slug,
                flow,
                decision.flush,
                singleton=False,
                deferred=True,
                batch_id=decision.flush_id,
            )
            await self._forget_buffer("batch", key)
            if not decision.opened:
                await self.engine.clear_timer(f"flow:batch:{key}")
            return
        assert decision.state is not None
        flush_at = int((stored or {}).get("flush_at_ms") or now + flow.batch.timeout_ms)
        value = {**decision.state.to_json(), "slug": function.slug, "flush_at_ms": flush_at}
        await self.state.put("batch", key, value, now_ms=now)
        if decision.opened:
            await self._arm("batch", key, value)

    async def on_timer(self, payload: Mapping[str, Any]) -> None:
        kind, key = payload.get("kind"), str(payload.get("key"))
        stored = self.state.get(str(kind), key)
        if kind not in ("debounce", "batch") or stored is None:
            return
        if kind == "batch" and stored.get("batch_id") != payload.get("batch_id"):
            return
        self.state.values.get(str(kind), {}).pop(key, None)  # new events open a new buffer
        slug = str(stored["slug"])
        cached = self._configs.get(slug)
        flow = cached[1] if cached else self.config_of(slug, self.state.get("function", slug) or {})
        if kind == "debounce":
            events = [DebounceState.from_json(stored).event]
            await self._schedule(slug, flow, events, singleton=True, deferred=True)
        else:
            batch = BatchState.from_json(stored)
            await self._schedule(
                slug, flow, batch.events, singleton=False, deferred=True, batch_id=batch.batch_id
            )
        # Removed only once the run exists: a crash in between re-fires (at least once).
        await self._forget_buffer(str(kind), key)

    async def _forget_buffer(self, kind: str, key: str) -> None:
        if self.state.get(kind, key) is None:  # unless a new buffer took the key meanwhile
            await self.state.remove(kind, key)

    async def _arm(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        assert self.engine is not None
        if kind == "debounce":
            at, payload = int(value["fire_at_ms"]), {"kind": kind, "key": key}
        else:
            at = int(value["flush_at_ms"])
            payload = {"kind": kind, "key": key, "batch_id": value["batch_id"]}
        await self.engine.set_timer(f"flow:{kind}:{key}", at, payload)

    # --- queue -----------------------------------------------------------------------------------

    async def acquire(self, job: JobView, now_ms: int) -> AcquireResult:
        keys = job.run_keys
        pairs = keys.get("c") or ()
        # Hot path: blocked jobs are re-offered after every release, so check before building.
        running = self.counters.running
        full = [key for key, limit in pairs if 0 < limit <= running.get(key, 0)]
        if full:
            waiting = self._waiting.setdefault(job.function_slug, {})
            if job.run_id not in waiting:
                waiting[job.run_id] = f"concurrency limit reached on {', '.join(full)}"
            return False
        limits = [(str(key), int(limit)) for key, limit in pairs]
        throttle = keys.get("t")
        if job.kind == "start" and throttle:
            key, limit, period_ms, burst = throttle
            decision = gcra(
                self.state.get("throttle", key),
                now_ms,
                period_ms=period_ms,
                limit=limit,
                burst=throttle_burst(int(limit), int(burst)),
            )
            if not decision.allowed:
                self._wait(job, f"throttled on {key}")
                return max(math.ceil(decision.retry_at_ms), now_ms + 1)
            self._persist_soon("throttle", str(key), decision.tat_ms, now_ms)
            if now_ms >= self._next_sweep_ms:
                self._spawn(self._maybe_sweep(now_ms))
        self.counters.take(job.job_id, limits)
        for key, _ in limits:  # also known after a restart, before any new admission
            self._key_functions.setdefault(key, set()).add(job.function_slug)
        self._waiting.get(job.function_slug, {}).pop(job.run_id, None)
        if job.job_id not in self._job_function:
            self._job_function[job.job_id] = job.function_slug
            self._running[job.function_slug] = self._running.get(job.function_slug, 0) + 1
        return True

    def _wait(self, job: JobView, reason: str) -> None:
        self._waiting.setdefault(job.function_slug, {})[job.run_id] = reason

    def _persist_soon(self, kind: str, key: str, value: Any, now: int) -> None:
        """Throttle state is written in the background: the dispatcher must not wait on disk."""
        self.state.values.setdefault(kind, {})[key] = value
        self._spawn(self.state.persist(kind, key, value, now_ms=now))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def release(self, job: JobView) -> None:
        self.counters.release(job.job_id)
        slug = self._job_function.pop(job.job_id, None)
        if slug is not None:
            remaining = self._running.get(slug, 0) - 1
            if remaining > 0:
                self._running[slug] = remaining
            else:
                self._running.pop(slug, None)

    async def on_run_finished(self, run_id: str, function_slug: str, status: str) -> None:
        self._waiting.get(function_slug, {}).pop(run_id, None)
        lock = self._singleton_of_run.pop(run_id, None)
        if lock is not None:
            holder = self.state.get("singleton", lock)
            if holder is not None and holder.get("run_id") == run_id:
                await self.state.remove("singleton", lock)

    # --- introspection ---------------------------------------------------------------------------

    def waiting_reason(self, run_id: str, function_slug: str) -> str | None:
        """Why a queued run's next SDK call is waiting (for run views), or None."""
        return self._waiting.get(function_slug, {}).get(run_id)

    def describe(self, function_slug: str) -> dict[str, Any]:
        """In-flight SDK calls of a function, per concurrency key, open buffers, singleton locks."""
        mine = [key for key, slugs in self._key_functions.items() if function_slug in slugs]
        return {
            "running": self._running.get(function_slug, 0),
            "concurrency_keys": {key: self.counters.count(key) for key in sorted(mine)},
            "waiting": dict(self._waiting.get(function_slug, {})),
            "debouncing": [
                key for key, value in self.state.items("debounce") if value["slug"] == function_slug
            ],
            "open_batches": {
                key: len(value["events"])
                for key, value in self.state.items("batch")
                if value["slug"] == function_slug
            },
            "singleton_locks": {
                key: value["run_id"]
                for key, value in self.state.items("singleton")
                if key.startswith(f"{function_slug}-") or key == function_slug
            },
        }
