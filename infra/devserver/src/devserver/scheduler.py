"""Run creation: admission by flow control, a new run's rows, its start job, its cancel_on
listeners and start timeout, and reruns (from the top or from a step)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from devserver.flow.cancel import cancel_listeners, start_deadline
from devserver.hooks import Admission, FlowControl
from devserver.progress import RunProgress
from devserver.queue import Job, JobQueue, new_job
from devserver.records import Pause
from devserver.registry import FunctionDef, Registry
from devserver.runcache import RunCache
from devserver.runstate import RunState
from devserver.store import Changes, Store
from devserver.util import new_ulid, now_ms

log = logging.getLogger("devserver.scheduler")

BuiltRun = tuple[RunState, Changes, list[Job]]


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
        changes = self._store.changes()
        changes.runs.add(run, [str(e.get("_internal_id") or e.get("id")) for e in events])
        for seq_offset, (step_hash, memo) in enumerate(run.memos.items()):
            changes.steps.save_memo(
                run.run_id,
                step_hash,
                step_id="",
                op="Memo",
                memo=memo,
                seq=self._progress.next_seq() + seq_offset,
                created_at=now,
            )
        jobs: list[Job] = []
        if status == "Scheduled":
            ts = first.get("ts")
            start_at = now
            if isinstance(ts, int) and ts > now and batch_id is None:
                start_at = ts  # a future event ts delays the run start
            start = new_job(run, "start", run_at=start_at)
            jobs.append(start)
            changes.jobs.add(start)
            self._add_cancel_listeners(fn, run, batch_id, changes)
            jobs.extend(self._timeout_jobs(fn, run, changes))
        return run, changes, jobs

    def _add_cancel_listeners(
        self, fn: FunctionDef, run: RunState, batch_id: str | None, changes: Changes
    ) -> None:
        now = now_ms()
        for listener in cancel_listeners(fn.config, run.events[0], now, batch=batch_id is not None):
            self._pause_names.add(listener.event)
            changes.pauses.add(
                Pause(
                    pause_id=new_ulid(),
                    run_id=run.run_id,
                    kind="cancel",
                    event_name=listener.event,
                    expression=listener.expression,
                    step_hash="",
                    step_name="",
                    correlation_id=None,
                    expires_at=listener.expires_at_ms,
                    timeout_job_id=None,
                    created_at=now,
                )
            )

    @staticmethod
    def _timeout_jobs(fn: FunctionDef, run: RunState, changes: Changes) -> list[Job]:
        at = start_deadline(fn.config, queued_ms=run.queued_at)
        if at is None:
            return []
        job = new_job(run, "run_timeout", run_at=at, payload={"which": "start"})
        changes.jobs.add(job)
        return [job]

    async def commit_runs(self, built: list[BuiltRun], extra: Changes | None = None) -> None:
        """Write the runs (and `extra`) in one transaction, then queue their jobs."""
        changes = self._store.changes()
        for _, run_changes, _ in built:
            changes.include(run_changes)
        if extra is not None:
            changes.include(extra)
        await self._store.commit(changes)
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
            found = False
            for step in await self._store.steps.of_run(run_id):
                if from_step in (step.hash, step.step_id):
                    found = True
                    break
                memos[step.hash] = step.memo
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
