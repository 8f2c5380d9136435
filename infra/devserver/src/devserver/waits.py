"""Waiting parts of a run: sleeps, wait_for_event and invoke pauses (and their timeouts), and
run-level timeouts. The protocol: infra/devserver/docs/executor.md#sleep, #wait-for-event,
#invoke and #cancellation-and-timeouts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from devserver.events import internal_event
from devserver.expressions import compile_expression, interpolate
from devserver.flow.cancel import finish_deadline
from devserver.lifecycle import RunFailure, RunLifecycle
from devserver.progress import RunProgress
from devserver.queue import Job, JobQueue, new_job
from devserver.records import Pause
from devserver.registry import FunctionDef
from devserver.runcache import RunCache
from devserver.runstate import RunState
from devserver.store import Changes, Store
from devserver.util import new_ulid, now_ms, parse_time_or_duration_ms

log = logging.getLogger("devserver.waits")

MAX_SLEEP_MS = 366 * 86_400_000
INVOKE_TIMEOUT_ERROR = {
    "error": "InngestInvokeTimeoutError: Timed out waiting for invoked function to complete",
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}
PAUSE_OPS = {"wait": "WaitForEvent", "invoke": "InvokeFunction"}


class Waits:
    def __init__(
        self,
        *,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        progress: RunProgress,
        lifecycle: RunLifecycle,
        pause_names: set[str],
    ) -> None:
        self._store = store
        self._runs = runs
        self._queue = queue
        self._progress = progress
        self._lifecycle = lifecycle
        self._pause_names = pause_names

    # ------------------------------------------------------------------ run timeouts
    @staticmethod
    def finish_timeout_job(fn: FunctionDef, run: RunState) -> Job | None:
        """The `timeouts.finish` job of a run that just started (None without one)."""
        at = finish_deadline(fn.config, started_ms=run.started_at or now_ms())
        if at is None:
            return None
        return new_job(run, "run_timeout", run_at=at, payload={"which": "finish"})

    async def run_timeout(self, job: Job) -> None:
        which = (job.payload or {}).get("which")
        run = await self._runs.get(job.run_id)
        await self._delete_job(job)
        if run is None or run.terminal:
            return
        if which == "start" and run.started_at is not None:
            return
        await self._lifecycle.cancel(run.run_id, reason=f"timeouts.{which} exceeded")

    # ------------------------------------------------------------------ sleeps
    async def wake(self, job: Job) -> None:
        """A sleep is over: its memo is null and the run carries on."""
        follow: list[Job] = []
        async with self._runs.lock(job.run_id):
            run = await self._runs.get(job.run_id)
            if run is None or run.terminal or job.removed:
                return
            changes = self._store.changes()
            changes.jobs.delete(job.job_id)
            name = str((job.payload or {}).get("name", ""))
            self._progress.save_memo(run, job.step_hash, name, "Sleep", None, changes)
            run.pending.discard(job.step_hash)
            self._progress.maybe_discover(run, changes, follow, any_resolved=True, race=False)
            await self._store.commit(changes)
        self._queue.remove(job)
        for new in follow:
            self._queue.push(new)

    # ------------------------------------------------------------------ pauses
    def add_wait(
        self,
        run: RunState,
        step_hash: str,
        name: str,
        op: Mapping[str, Any],
        opts: Mapping[str, Any],
        changes: Changes,
    ) -> Job:
        """Pause for wait_for_event; returns its timeout job. RunFailure when it is invalid."""
        event_name = str(opts.get("event") or op.get("name") or "")
        expression = opts.get("if")
        if expression:
            try:
                expression = interpolate(str(expression), event=run.events[0])
                compile_expression(expression)
            except Exception as exc:
                raise RunFailure(
                    {
                        "error": f"InvalidExpression: {exc}",
                        "name": "InvalidExpression",
                        "message": f"wait_for_event expression is invalid: {exc}",
                    }
                ) from exc
        now = now_ms()
        timeout = opts.get("timeout")
        try:
            expires = parse_time_or_duration_ms(str(timeout), base_ms=now) if timeout else now
        except ValueError:
            expires = now
        if expires - now > MAX_SLEEP_MS:
            raise RunFailure(
                {
                    "error": "wait timeout too long",
                    "name": "Error",
                    "message": "wait_for_event timeout exceeds 366 days",
                }
            )
        return self._add_pause(
            run, "wait", event_name, expression or None, step_hash, name, None, expires, changes
        )

    def _add_pause(
        self,
        run: RunState,
        kind: str,
        event_name: str,
        expression: str | None,
        step_hash: str,
        name: str,
        correlation: str | None,
        expires: int,
        changes: Changes,
    ) -> Job:
        """The pause and its timeout job (returned, to queue once committed)."""
        pause_id = new_ulid()
        self._pause_names.add(event_name)
        timeout_job = new_job(
            run,
            "pause_timeout",
            step_hash=step_hash,
            run_at=expires,
            payload={"pause_id": pause_id, "kind": kind, "name": name},
        )
        changes.pauses.add(
            Pause(
                pause_id=pause_id,
                run_id=run.run_id,
                kind=kind,
                event_name=event_name,
                expression=expression,
                step_hash=step_hash,
                step_name=name,
                correlation_id=correlation,
                expires_at=expires,
                timeout_job_id=timeout_job.job_id,
                created_at=now_ms(),
            )
        )
        changes.jobs.add(timeout_job)
        return timeout_job

    def add_invoke(
        self,
        run: RunState,
        fn: FunctionDef,
        step_hash: str,
        name: str,
        opts: Mapping[str, Any],
        changes: Changes,
    ) -> tuple[Job, dict[str, Any]]:
        """Pause for the invoked run's end: (its timeout job, the `function.invoked` event)."""
        now = now_ms()
        correlation = f"{run.run_id}.{step_hash}"
        timeout = opts.get("timeout")
        try:
            expires = (
                parse_time_or_duration_ms(str(timeout), base_ms=now)
                if timeout
                else now + MAX_SLEEP_MS
            )
        except ValueError:
            expires = now + MAX_SLEEP_MS
        timeout_job = self._add_pause(
            run,
            "invoke",
            "inngest/function.finished",
            None,
            step_hash,
            name,
            correlation,
            expires,
            changes,
        )
        raw_payload = opts.get("payload")
        payload: Mapping[str, Any] = raw_payload if isinstance(raw_payload, Mapping) else {}
        data = dict(payload.get("data") or {})
        data["_inngest"] = {
            "fn_id": str(opts.get("function_id", "")),
            "correlation_id": correlation,
            "expire": expires,
            "gid": "",
            "name": name,
            "source_app_id": fn.app_name,
            "source_fn_id": fn.uuid,
            "source_fn_v": 1,
        }
        invoked = internal_event({"name": "inngest/function.invoked", "data": data})
        changes.events.add(invoked, received_at=now_ms())
        return timeout_job, invoked

    async def resume_pause(self, pause_id: str, run_id: str, memo: Any) -> bool:
        """Consume a pause exactly once: store the memo and continue the run."""
        follow: list[Job] = []
        async with self._runs.lock(run_id):
            pause = await self._store.pauses.get(pause_id)
            run = await self._runs.get(run_id)
            if pause is None or run is None or run.terminal:
                return False
            changes = self._store.changes()
            changes.pauses.delete(pause_id)
            if pause.timeout_job_id:
                changes.jobs.delete(pause.timeout_job_id)
                for job in self._queue.jobs_of_run(run_id):
                    if job.job_id == pause.timeout_job_id:
                        self._queue.remove(job)
            op_name = PAUSE_OPS.get(pause.kind, pause.kind)
            self._progress.save_memo(run, pause.step_hash, pause.step_name, op_name, memo, changes)
            self._progress.record_attempt(
                changes,
                run,
                Job("", run_id, run.function_slug, pause.kind),
                step_hash=pause.step_hash,
                step_name=pause.step_name,
                op=op_name,
                started=pause.created_at,
                ended=now_ms(),
                status="Completed",
                output=memo,
            )
            run.pending.discard(pause.step_hash)
            self._progress.maybe_discover(run, changes, follow, any_resolved=True, race=False)
            await self._store.commit(changes)
        for job in follow:
            self._queue.push(job)
        return True

    async def pause_timeout(self, job: Job) -> None:
        """A wait timed out (memo null) or an invoke did (memo: the timeout error)."""
        payload = job.payload or {}
        memo = {"error": INVOKE_TIMEOUT_ERROR} if payload.get("kind") == "invoke" else None
        resumed = await self.resume_pause(str(payload.get("pause_id")), job.run_id, memo)
        if not resumed:
            await self._delete_job(job)
        else:
            self._queue.remove(job)

    async def _delete_job(self, job: Job) -> None:
        changes = self._store.changes()
        changes.jobs.delete(job.job_id)
        await self._store.commit(changes)
        self._queue.remove(job)
