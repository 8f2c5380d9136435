"""The engine: runs, their lifecycle, durable timers; composes ingestion, sync and execution."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, update

from devserver import store as t
from devserver.config import Settings
from devserver.executor import ExecutorMixin
from devserver.hooks import Admission, load_flow_control
from devserver.http1 import Http1Client
from devserver.ingest import IngestMixin
from devserver.queue import Job, JobQueue
from devserver.registry import FunctionDef, Registry
from devserver.runstate import RunState
from devserver.store import Op, Store, resolve_database_url
from devserver.sync import SyncMixin
from devserver.util import dumps, loads, new_ulid, now_ms
from devserver.waits import WaitsMixin

log = logging.getLogger("devserver.engine")

RUN_CACHE_SIZE = 1000
ONE_YEAR_MS = 366 * 86_400_000


class Engine(ExecutorMixin, WaitsMixin, IngestMixin, SyncMixin):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url, temp_dir = resolve_database_url(settings.database_url, in_memory=settings.in_memory)
        self.store = Store(url, temp_dir=temp_dir, durable=not settings.in_memory)
        self.registry = Registry()
        self.flow = load_flow_control(self)
        self.queue = JobQueue(self.flow, self._handle_job, workers=settings.queue_workers)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(7200.0, connect=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )
        self.sdk_http = Http1Client()
        self._cache: OrderedDict[str, RunState] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._seq = itertools.count(time.time_ns())
        self._timers: dict[str, Job] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._init_ingest()
        self._init_sync()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.store.open()
        await self._load_registry()
        await self._restore_queue()
        await self.flow.start()
        self.queue.start()
        await self._start_ingest()
        self._start_sync()

    async def stop(self) -> None:
        await self._stop_sync()
        await self._stop_ingest()
        await self.queue.stop()
        for task in list(self._background):
            task.cancel()
        await self.http.aclose()
        await self.sdk_http.close()
        await self.store.close()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def next_seq(self) -> int:
        return next(self._seq)

    async def _restore_queue(self) -> None:
        rows = await self.store.fetch_all(select(t.jobs))
        keys: dict[str, dict[str, Any]] = {}
        for row in await self.store.fetch_all(
            select(t.runs.c.run_id, t.runs.c.run_keys, t.runs.c.priority_ms).where(
                t.runs.c.run_id.in_(select(t.jobs.c.run_id))
            )
        ):
            keys[row.run_id] = {"keys": loads(row.run_keys) or {}, "priority": row.priority_ms}
        for row in rows:
            info = keys.get(row.run_id, {})
            self.queue.push(
                Job(
                    job_id=row.job_id,
                    run_id=row.run_id,
                    function_slug=row.function_slug,
                    kind=row.kind,
                    step_hash=row.step_hash,
                    attempt=row.attempt,
                    run_at=row.run_at,
                    queued_at=row.queued_at,
                    payload=loads(row.payload),
                    priority_ms=int(info.get("priority") or 0),
                    run_keys=info.get("keys", {}),
                )
            )
        for row in await self.store.fetch_all(select(t.timers)):
            self._push_timer(row.key, row.at_ms)

    # ----------------------------------------------------------------- run state
    def lock(self, run_id: str) -> asyncio.Lock:
        found = self._locks.get(run_id)
        if found is None:
            found = self._locks[run_id] = asyncio.Lock()
        return found

    async def get_run(self, run_id: str) -> RunState | None:
        cached = self._cache.get(run_id)
        if cached is not None:
            self._cache.move_to_end(run_id)
            return cached
        row = await self.store.fetch_one(select(t.runs).where(t.runs.c.run_id == run_id))
        if row is None:
            return None
        run = RunState.from_row(row)
        memo_rows = await self.store.fetch_all(
            select(t.steps.c.hash, t.steps.c.memo)
            .where(t.steps.c.run_id == run_id)
            .order_by(t.steps.c.seq)
        )
        run.memos = {r.hash: loads(r.memo) for r in memo_rows}
        if not run.terminal:
            self._remember(run)
        return run

    def _remember(self, run: RunState) -> None:
        self._cache[run.run_id] = run
        self._cache.move_to_end(run.run_id)
        while len(self._cache) > RUN_CACHE_SIZE:
            self._cache.popitem(last=False)

    def _forget(self, run_id: str) -> None:
        self._cache.pop(run_id, None)
        self._locks.pop(run_id, None)

    def new_job(
        self,
        run: RunState,
        kind: str,
        *,
        step_hash: str = "",
        run_at: int | None = None,
        payload: dict[str, Any] | None = None,
        attempt: int = 0,
    ) -> Job:
        now = now_ms()
        return Job(
            job_id=new_ulid(),
            run_id=run.run_id,
            function_slug=run.function_slug,
            kind=kind,
            step_hash=step_hash,
            attempt=attempt,
            run_at=now if run_at is None else run_at,
            queued_at=now,
            payload=payload,
            priority_ms=run.priority_ms,
            run_keys=run.run_keys,
        )

    @staticmethod
    def job_insert(job: Job) -> Op:
        return (
            insert(t.jobs),
            {
                "job_id": job.job_id,
                "run_id": job.run_id,
                "function_slug": job.function_slug,
                "kind": job.kind,
                "step_hash": job.step_hash,
                "attempt": job.attempt,
                "run_at": job.run_at,
                "queued_at": job.queued_at,
                "payload": None if job.payload is None else dumps(job.payload),
            },
        )

    @staticmethod
    def job_delete(job: Job) -> Op:
        return (delete(t.jobs).where(t.jobs.c.job_id == job.job_id), None)

    # ----------------------------------------------------------------- run creation
    def build_run(
        self,
        fn: FunctionDef,
        events: list[dict[str, Any]],
        *,
        admission: Admission | None = None,
        original_run_id: str | None = None,
        cron: str | None = None,
        batch_id: str | None = None,
        memos: Mapping[str, Any] | None = None,
        status: str = "Scheduled",
        reason: str | None = None,
    ) -> tuple[RunState, list[Op], list[Job]]:
        """A new run's rows and its start job (not yet written)."""
        now = now_ms()
        admission = admission or Admission()
        first = events[0]
        run = RunState(
            run_id=new_ulid(),
            function_slug=fn.slug,
            function_uuid=fn.uuid,
            app_name=fn.app_name,
            events=events,
            event_id=str(first.get("_internal_id") or first.get("id")),
            status=status,
            queued_at=now,
            original_run_id=original_run_id,
            cron=cron,
            batch_id=batch_id,
            run_keys=dict(admission.run_keys),
            priority_ms=admission.priority_ms,
            reason=reason or admission.reason,
            memos=dict(memos or {}),
        )
        # Events travel to the SDK without our internal bookkeeping key.
        run.events = [{k: v for k, v in e.items() if k != "_internal_id"} for e in events]
        ops: list[Op] = [(insert(t.runs), run.row())]
        for e in events:
            internal = str(e.get("_internal_id") or e.get("id"))
            ops.append((insert(t.run_events), {"event_id": internal, "run_id": run.run_id}))
        for seq_offset, (step_hash, memo) in enumerate(run.memos.items()):
            ops.append(
                (
                    insert(t.steps),
                    {
                        "run_id": run.run_id,
                        "hash": step_hash,
                        "seq": self.next_seq() + seq_offset,
                        "step_id": "",
                        "op": "Memo",
                        "memo": dumps(memo),
                        "created_at": now,
                    },
                )
            )
        jobs: list[Job] = []
        if status == "Scheduled":
            ts = first.get("ts")
            start_at = now
            if isinstance(ts, int) and ts > now and batch_id is None:
                start_at = ts  # a future event ts delays the run start
            start = self.new_job(run, "start", run_at=start_at)
            jobs.append(start)
            ops.append(self.job_insert(start))
            ops.extend(self._cancel_listener_ops(fn, run, batch_id))
            jobs.extend(self._timeout_jobs(fn, run, ops))
        return run, ops, jobs

    def _cancel_listener_ops(
        self, fn: FunctionDef, run: RunState, batch_id: str | None
    ) -> list[Op]:
        if batch_id is not None:
            return []
        entries = fn.config.get("cancel") or []
        ops: list[Op] = []
        now = now_ms()
        for entry in entries:
            if not isinstance(entry, Mapping) or not entry.get("event"):
                continue
            expression = entry.get("if")
            if expression:
                from devserver.expressions import interpolate

                try:
                    expression = interpolate(str(expression), event=run.events[0])
                except Exception:
                    log.warning("cancel expression %r could not be interpolated", expression)
                if expression.strip() == "false":
                    continue
            expires = now + ONE_YEAR_MS
            if entry.get("timeout"):
                from devserver.util import parse_time_or_duration_ms

                with contextlib.suppress(ValueError):
                    expires = parse_time_or_duration_ms(str(entry["timeout"]), base_ms=now)
            self.pause_names.add(str(entry["event"]))
            ops.append(
                (
                    insert(t.pauses),
                    {
                        "pause_id": new_ulid(),
                        "run_id": run.run_id,
                        "kind": "cancel",
                        "event_name": str(entry["event"]),
                        "expression": expression or None,
                        "step_hash": "",
                        "step_name": "",
                        "correlation_id": None,
                        "expires_at": expires,
                        "timeout_job_id": None,
                        "created_at": now,
                    },
                )
            )
        return ops

    def _timeout_jobs(self, fn: FunctionDef, run: RunState, ops: list[Op]) -> list[Job]:
        timeouts = fn.config.get("timeouts") or {}
        jobs: list[Job] = []
        start = timeouts.get("start") if isinstance(timeouts, Mapping) else None
        if start:
            from devserver.util import parse_duration_ms

            try:
                at = run.queued_at + parse_duration_ms(str(start))
            except ValueError:
                return jobs
            job = self.new_job(run, "run_timeout", run_at=at, payload={"which": "start"})
            jobs.append(job)
            ops.append(self.job_insert(job))
        return jobs

    async def commit_runs(
        self, built: list[tuple[RunState, list[Op], list[Job]]], extra_ops: list[Op] | None = None
    ) -> None:
        ops: list[Op] = []
        for _, run_ops, _ in built:
            ops.extend(run_ops)
        ops.extend(extra_ops or [])
        await self.store.write(ops)
        for run, _, jobs in built:
            if not run.terminal:
                self._remember(run)
            for job in jobs:
                self.queue.push(job)

    # ----------------------------------------------------------------- FlowEngine
    async def create_run(
        self,
        function_slug: str,
        events: list[dict[str, Any]],
        *,
        batch_id: str | None = None,
        run_keys: Mapping[str, Any] | None = None,
        priority_ms: int = 0,
    ) -> str | None:
        fn = self.registry.functions.get(function_slug)
        if fn is None or not events:
            return None
        admission = Admission(run_keys=dict(run_keys or {}), priority_ms=priority_ms)
        built = self.build_run(fn, events, admission=admission, batch_id=batch_id)
        await self.commit_runs([built])
        return built[0].run_id

    async def set_timer(self, timer_key: str, at_ms: int, payload: Mapping[str, Any]) -> None:
        await self.store.write(
            [
                (delete(t.timers).where(t.timers.c.key == timer_key), None),
                (insert(t.timers), {"key": timer_key, "at_ms": at_ms, "payload": dumps(payload)}),
            ]
        )
        self._push_timer(timer_key, at_ms)

    async def clear_timer(self, timer_key: str) -> None:
        old = self._timers.pop(timer_key, None)
        if old is not None:
            self.queue.remove(old)
        await self.store.write([(delete(t.timers).where(t.timers.c.key == timer_key), None)])

    def _push_timer(self, timer_key: str, at_ms: int) -> None:
        old = self._timers.pop(timer_key, None)
        if old is not None:
            self.queue.remove(old)
        job = Job(
            job_id=new_ulid(),
            run_id="",
            function_slug="",
            kind="timer",
            run_at=at_ms,
            queued_at=now_ms(),
            payload={"key": timer_key, "at_ms": at_ms},
        )
        self._timers[timer_key] = job
        self.queue.push(job)

    async def _fire_timer(self, job: Job) -> None:
        payload = job.payload or {}
        timer_key = str(payload.get("key"))
        if self._timers.get(timer_key) is not job:
            return
        row = await self.store.fetch_one(select(t.timers).where(t.timers.c.key == timer_key))
        self._timers.pop(timer_key, None)
        if row is None or row.at_ms != payload.get("at_ms"):
            return
        await self.store.write([(delete(t.timers).where(t.timers.c.key == timer_key), None)])
        await self.flow.on_timer(loads(row.payload))

    def wake_queue(self) -> None:
        self.queue.wake()

    # ----------------------------------------------------------------- cancel / finalize
    async def cancel_run(self, run_id: str, *, reason: str = "cancelled") -> bool:
        async with self.lock(run_id):
            run = await self.get_run(run_id)
            if run is None or run.terminal:
                return False
            error = {
                "error": "function cancelled",
                "name": "FunctionCancelledError",
                "message": f"function cancelled: {reason}",
            }
            ops: list[Op] = []
            emitted = self.finalize_ops(run, "Cancelled", error=error, ops=ops, reason=reason)
            await self.store.write(ops)
        await self.after_finalize(run, emitted)
        return True

    def finalize_ops(
        self,
        run: RunState,
        status: str,
        *,
        ops: list[Op],
        output: Any = None,
        error: Any = None,
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Mark the run final (ops appended); returns the lifecycle events to emit."""
        now = now_ms()
        run.status = status
        run.ended_at = now
        run.output = output if status == "Completed" else (output if output is not None else error)
        run.error = error
        if reason:
            run.reason = reason
        run.pending.clear()
        ops.append(
            (
                update(t.runs).where(t.runs.c.run_id == run.run_id),
                {
                    "status": status,
                    "ended_at": now,
                    "output": None if run.output is None else dumps(run.output),
                    "error": None if error is None else dumps(error),
                    "state": run.state_json(),
                    "reason": run.reason,
                    "started_at": run.started_at,
                },
            )
        )
        ops.append((delete(t.jobs).where(t.jobs.c.run_id == run.run_id), None))
        ops.append((delete(t.pauses).where(t.pauses.c.run_id == run.run_id), None))
        first = run.events[0] if run.events else {}
        if str(first.get("name", "")) in ("inngest/function.failed", "inngest/function.finished"):
            return []
        data: dict[str, Any] = {
            "function_id": run.function_slug,
            "run_id": run.run_id,
            "event": first,
            "events": run.events,
            "_inngest": {"status": status},
        }
        if status == "Completed":
            data["result"] = output
        if error is not None:
            data["error"] = error
        inngest_meta = (first.get("data") or {}).get("_inngest") or {}
        if isinstance(inngest_meta, Mapping) and inngest_meta.get("correlation_id"):
            data["correlation_id"] = inngest_meta["correlation_id"]
        emitted = [{"name": "inngest/function.finished", "id": new_ulid(), "data": data}]
        if status == "Failed":
            emitted.append({"name": "inngest/function.failed", "id": run.run_id, "data": data})
        elif status == "Cancelled":
            emitted.append({"name": "inngest/function.cancelled", "id": run.run_id, "data": data})
        stored = []
        for event in emitted:
            row, normalized = self.internal_event_row(event)
            ops.append((insert(t.events), row))
            stored.append(normalized)
        return stored

    async def after_finalize(self, run: RunState, emitted: list[dict[str, Any]]) -> None:
        self.queue.remove_run(run.run_id)
        self._forget(run.run_id)
        try:
            await self.flow.on_run_finished(run.run_id, run.function_slug, run.status)
        except Exception:
            log.exception("flow control on_run_finished failed")
        for event in emitted:
            self.enqueue_event(event)

    # ----------------------------------------------------------------- rerun
    async def rerun(self, run_id: str, *, from_step: str | None = None) -> str | None:
        """New run of the same function with the original events (never deduplicated)."""
        old = await self.get_run(run_id)
        if old is None:
            return None
        fn = self.registry.functions.get(old.function_slug)
        if fn is None:
            raise LookupError(f"function {old.function_slug} is not registered")
        memos: dict[str, Any] = {}
        if from_step:
            rows = await self.store.fetch_all(
                select(t.steps.c.hash, t.steps.c.step_id, t.steps.c.memo)
                .where(t.steps.c.run_id == run_id)
                .order_by(t.steps.c.seq)
            )
            found = False
            for row in rows:
                if from_step in (row.hash, row.step_id):
                    found = True
                    break
                memos[row.hash] = loads(row.memo)
            if not found:
                raise KeyError(f"step {from_step!r} not found in run {run_id}")
        admission = await self.flow.admit_event(fn.view, old.events, origin="rerun")
        if admission.action != "run":
            admission = Admission(run_keys=admission.run_keys, priority_ms=admission.priority_ms)
        events = [
            dict(e, _internal_id=old.event_id) if i == 0 else e for i, e in enumerate(old.events)
        ]
        built = self.build_run(
            fn,
            events,
            admission=admission,
            original_run_id=run_id,
            memos=memos,
            batch_id=old.batch_id,
        )
        await self.commit_runs([built])
        return built[0].run_id
