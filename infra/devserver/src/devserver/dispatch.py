"""The queue's handler: each due job goes to the collaborator that owns its kind."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from devserver.queue import Handler, Job, JobQueue
from devserver.runcache import RunCache
from devserver.store import Store

log = logging.getLogger("devserver.dispatch")


class JobRouter:
    def __init__(
        self,
        *,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        timer: Handler,
        handlers: Mapping[str, Handler],
    ) -> None:
        self._store = store
        self._runs = runs
        self._queue = queue
        self._timer = timer
        self._handlers = dict(handlers)

    async def handle(self, job: Job) -> None:
        if job.kind == "timer":  # flow control's timers belong to no run
            await self._timer(job)
            return
        run = await self._runs.get(job.run_id)
        if run is None or run.terminal or job.removed:
            await self._drop(job)
            return
        handler = self._handlers.get(job.kind)
        if handler is None:
            log.error("unknown job kind %s", job.kind)
            await self._drop(job)
            return
        await handler(job)

    async def _drop(self, job: Job) -> None:
        changes = self._store.changes()
        changes.jobs.delete(job.job_id)
        await self._store.commit(changes)
        self._queue.remove(job)
