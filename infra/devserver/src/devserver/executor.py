"""Executor: calls the SDK for each start / discovery / step job and turns its answer (200, 206
opcodes, errors) into memos, new jobs, pauses and run outcomes (infra/devserver/docs/calls.md,
infra/devserver/docs/executor.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from devserver.events import EventFeed
from devserver.http1 import Http1Client
from devserver.lifecycle import RunLifecycle
from devserver.opcodes import (
    RESULT_OPCODES,
    Decision,
    Opcode,
    OpcodeHandlers,
    StepCall,
    error_object,
)
from devserver.progress import RunProgress
from devserver.queue import Job, JobQueue
from devserver.registry import FunctionDef, Registry
from devserver.runcache import RunCache
from devserver.runstate import RunState
from devserver.sdk_call import CallOutcome, build_request, post
from devserver.store import Store
from devserver.util import now_ms, parse_iso_ms
from devserver.waits import Waits

log = logging.getLogger("devserver.executor")

MAX_STEPS = 1000
STEP_ERRORED = {"error": "step errored", "name": "Error", "message": "step errored"}


@dataclass
class AfterCommit:
    """What an applied answer leaves to do once its changes are durable."""

    events: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


class Executor:
    """Calls the SDK for start / discovery / step jobs and applies its answer."""

    def __init__(
        self,
        *,
        signing_key: str | None,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        registry: Registry,
        progress: RunProgress,
        waits: Waits,
        lifecycle: RunLifecycle,
        feed: EventFeed,
        sdk_http: Http1Client,
    ) -> None:
        self._signing_key = signing_key
        self._store = store
        self._runs = runs
        self._queue = queue
        self._registry = registry
        self._progress = progress
        self._waits = waits
        self._lifecycle = lifecycle
        self._feed = feed
        self._sdk_http = sdk_http
        self._opcodes = OpcodeHandlers(progress=progress, waits=waits)

    async def call(self, job: Job) -> None:
        """Run a start, discovery or step job: one SDK request, its outcome written."""
        run = await self._runs.get(job.run_id)
        if run is None or run.terminal:
            return
        fn = self._registry.all_functions.get(run.function_slug)
        if fn is None:
            await self._fail_unregistered(run, job)
            return
        if run.started_at is None:
            await self._mark_started(run, fn)
        url, content, headers = build_request(run, job, fn, self._signing_key)
        started = now_ms()
        outcome = await post(self._sdk_http, url, content, headers)
        ended = now_ms()
        async with self._runs.lock(run.run_id):
            current = await self._runs.get(run.run_id)
            if current is None or current.terminal or job.removed:
                return  # cancelled while in flight: results are discarded
            run = current
            changes = self._store.changes()
            call = StepCall(run, job, fn, changes, started, ended, no_retry=outcome.no_retry)
            after = self._apply_outcome(call, outcome)
            await self._store.commit(changes)
        if run.terminal:
            await self._lifecycle.after_finalize(run, after.events)
            return
        if job not in after.jobs:
            self._queue.remove(job)
        for new in after.jobs:
            self._queue.push(new)
        for event in after.events:
            self._feed.put(event)

    async def _fail_unregistered(self, run: RunState, job: Job) -> None:
        async with self._runs.lock(run.run_id):
            changes = self._store.changes()
            changes.jobs.delete(job.job_id)
            error = {
                "error": "function not found",
                "name": "Error",
                "message": f"function {run.function_slug} is not registered",
            }
            emitted = self._lifecycle.finalize(run, "Failed", changes, error=error)
            await self._store.commit(changes)
        await self._lifecycle.after_finalize(run, emitted)

    async def _mark_started(self, run: RunState, fn: FunctionDef) -> None:
        """First SDK call of the run: Running, and its `timeouts.finish` clock starts."""
        async with self._runs.lock(run.run_id):
            if run.started_at is not None:
                return
            run.started_at = now_ms()
            run.status = "Running"
            changes = self._store.changes()
            changes.runs.mark_started(run)
            timeout = self._waits.finish_timeout_job(fn, run)
            if timeout is not None:
                changes.jobs.add(timeout)
            await self._store.commit(changes)
        if timeout is not None:
            self._queue.push(timeout)

    # ------------------------------------------------------------------ the answer
    def _apply_outcome(self, call: StepCall, outcome: CallOutcome) -> AfterCommit:
        if outcome.transport_error is not None or outcome.status not in (200, 206):
            message = outcome.transport_error or f"invalid status code: {outcome.status}"
            error = error_object(outcome.body, message)
            self._record_call(call, "Function", "Failed", call.job.step_hash, error=error)
            return self._retry_or_fail(
                call,
                error,
                no_retry=outcome.no_retry and outcome.transport_error is None,
                retry_after=outcome.headers.get("retry-after"),
            )
        if outcome.status == 200:
            call.changes.jobs.delete(call.job.job_id)
            self._record_call(call, "RunComplete", "Completed", "", output=outcome.body)
            events = self._lifecycle.finalize(
                call.run, "Completed", call.changes, output=outcome.body
            )
            return AfterCommit(events=events)
        op_list = outcome.body if isinstance(outcome.body, list) else []
        valid = [o for o in op_list if isinstance(o, Mapping) and isinstance(o.get("id"), str)]
        if not valid:
            error = {
                "error": "invalid response",
                "name": "Error",
                "message": "206 response without a list of opcodes",
            }
            return self._retry_or_fail(call, error, no_retry=False)
        return self._apply_ops(call, valid)

    def _record_call(
        self,
        call: StepCall,
        op: str,
        status: str,
        step_hash: str,
        *,
        error: Any = None,
        output: Any = None,
    ) -> None:
        """The attempt of a call whose answer was not opcodes (a failure, or the run's end)."""
        self._progress.record_attempt(
            call.changes,
            call.run,
            call.job,
            step_hash=step_hash,
            step_name="",
            op=op,
            started=call.started,
            ended=call.ended,
            status=status,
            error=error,
            output=output,
        )

    def _retry_or_fail(
        self,
        call: StepCall,
        error: dict[str, Any],
        *,
        no_retry: bool,
        retry_after: str | None = None,
    ) -> AfterCommit:
        job = call.job
        if no_retry or job.attempt + 1 >= call.fn.max_attempts:
            return self._fail(call, error)
        delay = self._progress.backoff_ms(job.attempt)
        if retry_after:
            delay = _retry_after_ms(retry_after, delay)
        job.attempt += 1
        job.run_at = now_ms() + delay
        call.changes.jobs.reschedule(job)
        return AfterCommit(jobs=[job])

    def _fail(self, call: StepCall, error: dict[str, Any]) -> AfterCommit:
        call.changes.jobs.delete(call.job.job_id)
        return AfterCommit(
            events=self._lifecycle.finalize(call.run, "Failed", call.changes, error=error)
        )

    def _apply_ops(self, call: StepCall, op_list: list[Mapping[str, Any]]) -> AfterCommit:
        """Each opcode to its handler, then the run moves on from what they decided."""
        run = call.run
        if len(run.memos) + len(op_list) > MAX_STEPS:
            message = f"The function run exceeded the step limit of {MAX_STEPS} steps."
            return self._fail(
                call, {"error": message, "name": "StepLimitError", "message": message}
            )
        if len(op_list) > 1:
            run.force_plan = True
        # WaitForEvent first: a wait is registered before a sibling step can emit its event.
        opcodes = sorted(map(Opcode.parse, op_list), key=lambda o: o.kind != "WaitForEvent")
        decided: list[tuple[Opcode, Decision]] = []
        for opcode in opcodes:
            if opcode.kind not in RESULT_OPCODES and opcode.step_hash in run.pending:
                # Already scheduled (race-mode discovery re-reports unfinished siblings): never
                # enqueue a second job for the same step.
                continue
            decision = self._opcodes.handle(call, opcode)
            if decision.failure is not None:
                return self._fail(call, decision.failure)
            decided.append((opcode, decision))
        race = any(opcode.opts.get("parallelMode") == "race" for opcode in opcodes)
        return self._settle(call, decided, race=race)

    def _settle(
        self, call: StepCall, decided: list[tuple[Opcode, Decision]], *, race: bool
    ) -> AfterCommit:
        """Pending steps updated; then retry this call, or discover what comes next."""
        run, job = call.run, call.job
        after = AfterCommit()
        for opcode, decision in decided:
            after.jobs.extend(decision.jobs)
            after.events.extend(decision.events)
            if decision.waiting:
                run.pending.add(opcode.step_hash)
        if any(decision.retry for _, decision in decided):
            # Planned siblings were enqueued already; this job is retried for its failed step.
            self._progress.save_state(run, call.changes)
            retried = self._retry_or_fail(call, STEP_ERRORED, no_retry=False)
            after.jobs.extend(retried.jobs)
            return after
        settled = [opcode.step_hash for opcode, decision in decided if decision.settled]
        run.pending.difference_update(settled)
        if job.kind == "step":
            run.pending.discard(job.step_hash)
        # The finished job's row becomes the next discovery job when there is one (one UPDATE
        # instead of a DELETE + INSERT on the hot path).
        if not self._progress.maybe_discover(
            run, call.changes, after.jobs, any_resolved=bool(settled), race=race, reuse=job
        ):
            call.changes.jobs.delete(job.job_id)
        return after


def _retry_after_ms(value: str, fallback: int) -> int:
    now = now_ms()
    value = value.strip()
    try:
        if value.isdigit() and len(value) <= 7:
            delay = int(value) * 1000
        else:
            try:
                delay = parse_iso_ms(value) - now
            except ValueError:
                delay = int(parsedate_to_datetime(value).timestamp() * 1000) - now
    except (ValueError, TypeError):
        return fallback
    return max(1000, min(delay, 86_400_000))
