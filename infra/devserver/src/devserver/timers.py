"""Durable timers flow control sets (debounce, batch flush): stored rows, fired through the job
queue as `timer` jobs, restored on start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devserver.hooks import FlowControl
from devserver.queue import Job, JobQueue
from devserver.store import Store
from devserver.util import new_ulid, now_ms


class FlowTimers:
    def __init__(self, *, store: Store, queue: JobQueue, flow: FlowControl) -> None:
        self._store = store
        self._queue = queue
        self._flow = flow
        self._jobs: dict[str, Job] = {}

    async def restore(self) -> None:
        for timer in await self._store.timers.all():
            self._push(timer.key, timer.at_ms)

    async def set(self, timer_key: str, at_ms: int, payload: Mapping[str, Any]) -> None:
        """Replaces any timer with the same key."""
        changes = self._store.changes()
        changes.timers.set(timer_key, at_ms, payload)
        await self._store.commit(changes)
        self._push(timer_key, at_ms)

    async def clear(self, timer_key: str) -> None:
        old = self._jobs.pop(timer_key, None)
        if old is not None:
            self._queue.remove(old)
        await self._delete(timer_key)

    async def _delete(self, timer_key: str) -> None:
        changes = self._store.changes()
        changes.timers.delete(timer_key)
        await self._store.commit(changes)

    def _push(self, timer_key: str, at_ms: int) -> None:
        old = self._jobs.pop(timer_key, None)
        if old is not None:
            self._queue.remove(old)
        job = Job(
            job_id=new_ulid(),
            run_id="",
            function_slug="",
            kind="timer",
            run_at=at_ms,
            queued_at=now_ms(),
            payload={"key": timer_key, "at_ms": at_ms},
        )
        self._jobs[timer_key] = job
        self._queue.push(job)

    async def fire(self, job: Job) -> None:
        """A timer job is due: hand its payload to flow control unless it was replaced."""
        self._queue.remove(job)
        payload = job.payload or {}
        timer_key = str(payload.get("key"))
        if self._jobs.get(timer_key) is not job:
            return
        timer = await self._store.timers.get(timer_key)
        self._jobs.pop(timer_key, None)
        if timer is None or timer.at_ms != payload.get("at_ms"):
            return
        await self._delete(timer_key)
        await self._flow.on_timer(timer.payload)
