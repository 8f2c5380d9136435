"""Run creation: admission by flow control, a new run's rows, its start job, its cancel_on
listeners and start timeout, and reruns (from the top or from a step)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select

from devserver import store as t
from devserver.expressions import interpolate
from devserver.hooks import Admission, FlowControl
from devserver.progress import RunProgress, job_insert
from devserver.queue import Job, JobQueue, new_job
from devserver.registry import FunctionDef, Registry
from devserver.runcache import RunCache
from devserver.runstate import RunState
from devserver.store import Op, Store
from devserver.util import (
    dumps,
    loads,
    new_ulid,
    now_ms,
    parse_duration_ms,
    parse_time_or_duration_ms,
)

log = logging.getLogger("devserver.scheduler")

ONE_YEAR_MS = 366 * 86_400_000

BuiltRun = tuple[RunState, list[Op], list[Job]]


class RunScheduler:
    def __init__(
        self,
        *,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        registry: Registry,
        flow: FlowControl,
        progress: RunProgress,
        pause_names: set[str],
    ) -> None:
        self._store = store
        self._runs = runs
        self._queue = queue
        self._registry = registry
        self._flow = flow
        self._progress = progress
        self._pause_names = pause_names

    async def admit(self, fn: FunctionDef, events: list[dict[str, Any]], origin: str) -> Admission:
        """Flow control's decision; a failing flow control lets the run through (logged)."""
        try:
            return await self._flow.admit_event(fn.view, events, origin=origin)
        except Exception:
            log.exception("flow control admit_event failed for %s; running", fn.slug)
            return Admission()

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
    ) -> BuiltRun:
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
                        "seq": self._progress.next_seq() + seq_offset,
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
            start = new_job(run, "start", run_at=start_at)
            jobs.append(start)
            ops.append(job_insert(start))
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
                try:
                    expression = interpolate(str(expression), event=run.events[0])
                except Exception:
                    log.warning("cancel expression %r could not be interpolated", expression)
                if expression.strip() == "false":
                    continue
            expires = now + ONE_YEAR_MS
            if entry.get("timeout"):
                with contextlib.suppress(ValueError):
                    expires = parse_time_or_duration_ms(str(entry["timeout"]), base_ms=now)
            self._pause_names.add(str(entry["event"]))
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

    @staticmethod
    def _timeout_jobs(fn: FunctionDef, run: RunState, ops: list[Op]) -> list[Job]:
        timeouts = fn.config.get("timeouts") or {}
        jobs: list[Job] = []
        start = timeouts.get("start") if isinstance(timeouts, Mapping) else None
        if start:
            try:
                at = run.queued_at + parse_duration_ms(str(start))
            except ValueError:
                return jobs
            job = new_job(run, "run_timeout", run_at=at, payload={"which": "start"})
            jobs.append(job)
            ops.append(job_insert(job))
        return jobs

    async def commit_runs(self, built: list[BuiltRun], extra_ops: list[Op] | None = None) -> None:
        """Write the runs (and extra_ops) in one transaction, then queue their jobs."""
        ops: list[Op] = []
        for _, run_ops, _ in built:
            ops.extend(run_ops)
        ops.extend(extra_ops or [])
        await self._store.write(ops)
        for run, _, jobs in built:
            if not run.terminal:
                self._runs.remember(run)
            for job in jobs:
                self._queue.push(job)

    async def create_run(
        self,
        function_slug: str,
        events: list[dict[str, Any]],
        *,
        batch_id: str | None = None,
        run_keys: Mapping[str, Any] | None = None,
        priority_ms: int = 0,
    ) -> str | None:
        """A run created without admission (flow control's debounce, batch, singleton)."""
        fn = self._registry.functions.get(function_slug)
        if fn is None or not events:
            return None
        admission = Admission(run_keys=dict(run_keys or {}), priority_ms=priority_ms)
        built = self.build_run(fn, events, admission=admission, batch_id=batch_id)
        await self.commit_runs([built])
        return built[0].run_id

    async def rerun(self, run_id: str, *, from_step: str | None = None) -> str | None:
        """New run of the same function with the original events (never deduplicated)."""
        old = await self._runs.get(run_id)
        if old is None:
            return None
        fn = self._registry.functions.get(old.function_slug)
        if fn is None:
            raise LookupError(f"function {old.function_slug} is not registered")
        memos: dict[str, Any] = {}
        if from_step:
            rows = await self._store.fetch_all(
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
        admission = await self._flow.admit_event(fn.view, old.events, origin="rerun")
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
