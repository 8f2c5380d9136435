"""The engine: its collaborators wired together, started and stopped in order.

Each part gets what it needs in its constructor and knows nothing above it:

    store      run state (store.py)              runs       live RunStates + per-run locks
    queue      due jobs, gated by flow control   flow       concurrency, throttle, debounce...
    scheduler  admission and run creation        lifecycle  final status, lifecycle events
    executor   SDK calls and their opcodes       waits      sleeps, pauses, run timeouts
    ai         step.ai.infer provider calls      timers     flow control's durable timers
    ingest     Event API, pause matching         sync       app registration and polling
    cron       cron triggers                     router     job kind -> the part that runs it

The Engine itself is also the `FlowEngine` flow control calls back into (create a run, set a
timer, cancel, wake the queue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from devserver.ai import AIGateway
from devserver.config import Settings
from devserver.cron import CronScheduler
from devserver.database import Database, resolve_database_url
from devserver.dispatch import JobRouter
from devserver.events import EventFeed
from devserver.executor import Executor
from devserver.flow.control import FlowController
from devserver.http1 import Http1Client
from devserver.ingest import Ingest
from devserver.lifecycle import RunLifecycle
from devserver.progress import RunProgress
from devserver.queue import JobQueue
from devserver.registry import Registry
from devserver.runcache import RunCache
from devserver.scheduler import RunScheduler
from devserver.store import Store
from devserver.sync import AppSync
from devserver.timers import FlowTimers
from devserver.waits import Waits


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url, temp_dir = resolve_database_url(settings.database_url, in_memory=settings.in_memory)
        self.database = Database(url, temp_dir=temp_dir, durable=not settings.in_memory)
        self.store = Store(self.database)
        self.registry = Registry()
        self.flow = FlowController(self, store=self.database)
        self.queue = JobQueue(self.flow, workers=settings.queue_workers)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(7200.0, connect=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )
        self.sdk_http = Http1Client()
        self.feed = EventFeed()
        self.runs = RunCache(self.store)
        pause_names: set[str] = set()  # event names some pause listens for
        progress = RunProgress(retry_interval_s=settings.retry_interval)
        self.lifecycle = RunLifecycle(
            store=self.store, runs=self.runs, queue=self.queue, flow=self.flow, feed=self.feed
        )
        self.scheduler = RunScheduler(
            store=self.store,
            runs=self.runs,
            queue=self.queue,
            registry=self.registry,
            flow=self.flow,
            progress=progress,
            pause_names=pause_names,
        )
        self.timers = FlowTimers(store=self.store, queue=self.queue, flow=self.flow)
        self.waits = Waits(
            store=self.store,
            runs=self.runs,
            queue=self.queue,
            progress=progress,
            lifecycle=self.lifecycle,
            pause_names=pause_names,
        )
        self.ai = AIGateway(
            store=self.store,
            runs=self.runs,
            queue=self.queue,
            registry=self.registry,
            progress=progress,
            http=self.http,
        )
        self.executor = Executor(
            store=self.store,
            runs=self.runs,
            queue=self.queue,
            signing_key=settings.signing_key,
            registry=self.registry,
            progress=progress,
            waits=self.waits,
            lifecycle=self.lifecycle,
            feed=self.feed,
            sdk_http=self.sdk_http,
        )
        self.ingest = Ingest(
            store=self.store,
            registry=self.registry,
            scheduler=self.scheduler,
            lifecycle=self.lifecycle,
            waits=self.waits,
            feed=self.feed,
            pause_names=pause_names,
        )
        self.cron = CronScheduler(
            store=self.store, registry=self.registry, scheduler=self.scheduler
        )
        self.sync = AppSync(
            settings=settings,
            store=self.store,
            registry=self.registry,
            flow=self.flow,
            http=self.http,
            on_change=self.cron.functions_changed,
        )
        self.router = JobRouter(
            store=self.store,
            runs=self.runs,
            queue=self.queue,
            timer=self.timers.fire,
            handlers={
                "start": self.executor.call,
                "discovery": self.executor.call,
                "step": self.executor.call,
                "sleep": self.waits.wake,
                "pause_timeout": self.waits.pause_timeout,
                "run_timeout": self.waits.run_timeout,
                "ai": self.ai.call,
            },
        )

    @property
    def url_errors(self) -> dict[str, str | None]:
        """SDK URL -> error of its last PUT sync (None once it synced)."""
        return self.sync.url_errors

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.store.open()
        await self.sync.load_registry()
        for job in await self.store.jobs.all():
            self.queue.push(job)
        await self.timers.restore()
        await self.flow.start()
        self.queue.start(self.router.handle)
        await self.ingest.start()
        self.cron.start()
        self.sync.start()

    async def stop(self) -> None:
        await self.sync.stop()
        await self.cron.stop()
        await self.ingest.stop()
        await self.queue.stop()
        await self.http.aclose()
        await self.sdk_http.close()
        await self.store.close()

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
        return await self.scheduler.create_run(
            function_slug, events, batch_id=batch_id, run_keys=run_keys, priority_ms=priority_ms
        )

    async def set_timer(self, timer_key: str, at_ms: int, payload: Mapping[str, Any]) -> None:
        await self.timers.set(timer_key, at_ms, payload)

    async def clear_timer(self, timer_key: str) -> None:
        await self.timers.clear(timer_key)

    async def cancel_run(self, run_id: str, *, reason: str = "cancelled") -> bool:
        return await self.lifecycle.cancel(run_id, reason=reason)

    def wake_queue(self) -> None:
        self.queue.wake()
