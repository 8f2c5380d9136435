"""Time-ordered in-memory job queue backed by durable `jobs` rows, with a worker pool.

Every job knows its function and run. Jobs that call the SDK ask flow control
(`FlowControl.acquire`) whether they may start; blocked jobs are parked and re-offered on the
next release, delayed jobs are re-queued at the time flow control names.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver.hooks import FlowControl, JobView
from devserver.runstate import RunState
from devserver.util import new_ulid, now_ms

log = logging.getLogger("devserver.queue")

# Kinds that make an SDK (or provider) call and therefore go through flow control.
CALL_KINDS = frozenset({"start", "discovery", "step", "ai"})


@dataclass(slots=True, eq=False)
class Job:
    job_id: str
    run_id: str
    function_slug: str
    kind: str
    step_hash: str = ""
    attempt: int = 0
    run_at: int = 0
    queued_at: int = 0
    payload: dict[str, Any] | None = None
    priority_ms: int = 0
    run_keys: Mapping[str, Any] = field(default_factory=dict)
    removed: bool = False

    def view(self) -> JobView:
        return JobView(
            job_id=self.job_id,
            run_id=self.run_id,
            function_slug=self.function_slug,
            kind=self.kind,
            queued_at_ms=self.queued_at,
            run_keys=self.run_keys,
        )


def new_job(
    run: RunState,
    kind: str,
    *,
    step_hash: str = "",
    run_at: int | None = None,
    payload: dict[str, Any] | None = None,
    attempt: int = 0,
) -> Job:
    """A job of the run (not yet stored nor queued), due now unless run_at says otherwise."""
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


Handler = Callable[[Job], Awaitable[None]]


async def _no_handler(job: Job) -> None:
    raise RuntimeError(f"job {job.job_id} dequeued before JobQueue.start(handler)")


class JobQueue:
    """Due jobs go to the handler given to start(), at most `workers` at a time."""

    def __init__(self, flow: FlowControl, *, workers: int = 100) -> None:
        self._flow = flow
        self._handler: Handler = _no_handler
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._by_run: dict[str, list[Job]] = {}
        self._parked: list[Job] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0

    def __len__(self) -> int:
        return len(self._heap) + len(self._parked)

    def _score(self, job: Job) -> int:
        # Priority moves due start/step jobs ahead by up to priority_ms; a job scheduled in the
        # future keeps its time so it never hides due jobs behind it.
        if job.kind in ("start", "step", "discovery") and job.run_at <= now_ms():
            return job.run_at - job.priority_ms
        return job.run_at

    def push(self, job: Job) -> None:
        if job.removed:
            return
        jobs = self._by_run.setdefault(job.run_id, [])
        if job not in jobs:
            jobs.append(job)
        heapq.heappush(self._heap, (self._score(job), next(self._seq), job))
        self._wake.set()

    def remove(self, job: Job) -> None:
        job.removed = True
        jobs = self._by_run.get(job.run_id)
        if jobs is not None:
            with contextlib.suppress(ValueError):
                jobs.remove(job)
            if not jobs:
                self._by_run.pop(job.run_id, None)

    def remove_run(self, run_id: str) -> None:
        for job in self._by_run.pop(run_id, []):
            job.removed = True

    def jobs_of_run(self, run_id: str) -> list[Job]:
        return list(self._by_run.get(run_id, []))

    def wake(self) -> None:
        """Re-offer parked jobs (after a release or a limit change)."""
        if self._parked:
            parked, self._parked = self._parked, []
            for job in parked:
                if not job.removed:
                    heapq.heappush(self._heap, (self._score(job), next(self._seq), job))
        self._wake.set()

    def start(self, handler: Handler) -> None:
        self._handler = handler
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="devserver-queue")

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _dispatch_loop(self) -> None:
        while True:
            await self._slots.acquire()
            job = await self._next_due()
            if job.kind in CALL_KINDS:
                try:
                    decision = await self._flow.acquire(job.view(), now_ms())
                except Exception:
                    log.exception("flow control acquire failed; starting job")
                    decision = True
                if decision is False:
                    self._parked.append(job)
                    self._slots.release()
                    continue
                if decision is not True:
                    job.run_at = int(decision)
                    heapq.heappush(self._heap, (self._score(job), next(self._seq), job))
                    self._slots.release()
                    continue
                acquired = True
            else:
                acquired = False
            self.in_flight += 1
            task = asyncio.create_task(self._run(job, acquired))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next_due(self) -> Job:
        while True:
            while self._heap and self._heap[0][2].removed:
                heapq.heappop(self._heap)
            if self._heap:
                _, _, job = self._heap[0]
                now = now_ms()
                if job.run_at <= now:
                    heapq.heappop(self._heap)
                    return job
                # Scores may put an undue job first (priority); look for the earliest due one.
                delay = (job.run_at - now) / 1000
            else:
                delay = None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _run(self, job: Job, acquired: bool) -> None:
        try:
            await self._handler(job)
        except Exception:
            log.exception("job %s (%s) of run %s crashed", job.job_id, job.kind, job.run_id)
        finally:
            self.in_flight -= 1
            self._slots.release()
            if acquired:
                try:
                    await self._flow.release(job.view())
                except Exception:
                    log.exception("flow control release failed")
                self.wake()
