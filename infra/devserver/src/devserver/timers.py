"""Durable timers flow control sets (debounce, batch flush): stored rows, fired through the job
queue as `timer` jobs, restored on start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select

from devserver import store as t
from devserver.hooks import FlowControl
from devserver.queue import Job, JobQueue
from devserver.store import Store
from devserver.util import dumps, loads, new_ulid, now_ms


class FlowTimers:
    def __init__(self, *, store: Store, queue: JobQueue, flow: FlowControl) -> None:
        self._store = store
        self._queue = queue
        self._flow = flow
        self._jobs: dict[str, Job] = {}

    async def restore(self) -> None:
        for row in await self._store.fetch_all(select(t.timers)):
            self._push(row.key, row.at_ms)

    async def set(self, timer_key: str, at_ms: int, payload: Mapping[str, Any]) -> None:
        """Replaces any timer with the same key."""
        await self._store.write(
            [
                (delete(t.timers).where(t.timers.c.key == timer_key), None),
                (insert(t.timers), {"key": timer_key, "at_ms": at_ms, "payload": dumps(payload)}),
            ]
        )
        self._push(timer_key, at_ms)

    async def clear(self, timer_key: str) -> None:
        old = self._jobs.pop(timer_key, None)
        if old is not None:
            self._queue.remove(old)
        await self._store.write([(delete(t.timers).where(t.timers.c.key == timer_key), None)])

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
        row = await self._store.fetch_one(select(t.timers).where(t.timers.c.key == timer_key))
        self._jobs.pop(timer_key, None)
        if row is None or row.at_ms != payload.get("at_ms"):
            return
        await self._store.write([(delete(t.timers).where(t.timers.c.key == timer_key), None)])
        await self._flow.on_timer(loads(row.payload))
