"""Cron triggers: parsing (with `TZ=` / `CRON_TZ=` prefixes) and the loop that fires them as
`inngest/scheduled.timer` events, each creating a run through admission."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from devserver.events import internal_event
from devserver.registry import Registry
from devserver.scheduler import BuiltRun, RunScheduler
from devserver.store import Store
from devserver.util import iso_ms, now_ms

log = logging.getLogger("devserver.cron")


def parse_cron(expression: str) -> tuple[str, ZoneInfo | None]:
    """'TZ=Europe/Paris 0 9 * * *' -> ('0 9 * * *', ZoneInfo)."""
    expression = expression.strip()
    zone = None
    if expression.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, expression = expression.partition(" ")
        zone = ZoneInfo(prefix.split("=", 1)[1])
    if len(expression.split()) != 5:
        raise ValueError(f"cron expression {expression!r} must have 5 fields")
    if not croniter.is_valid(expression):
        raise ValueError(f"invalid cron expression {expression!r}")
    return expression, zone


def next_cron_ms(expression: str, after_ms: int) -> int:
    spec, zone = parse_cron(expression)
    base = datetime.fromtimestamp(after_ms / 1000, tz=zone or ZoneInfo("UTC"))
    nxt: datetime = croniter(spec, base).get_next(datetime)
    return int(nxt.timestamp() * 1000)


class CronScheduler:
    def __init__(self, *, store: Store, registry: Registry, scheduler: RunScheduler) -> None:
        self._store = store
        self._registry = registry
        self._scheduler = scheduler
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def functions_changed(self) -> None:
        """Re-read the cron triggers now (after a sync)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="devserver-cron")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _wanted(self, schedule: dict[tuple[str, str], int], now: int) -> dict[tuple[str, str], int]:
        """Next tick of every cron trigger registered now (known ticks are kept)."""
        wanted: dict[tuple[str, str], int] = {}
        for fn in self._registry.functions.values():
            for trigger in fn.triggers:
                if not trigger.cron:
                    continue
                key = (fn.slug, trigger.cron)
                try:
                    wanted[key] = schedule.get(key) or next_cron_ms(trigger.cron, now)
                except Exception:
                    log.warning("bad cron %s on %s", trigger.cron, fn.slug)
        return wanted

    async def _loop(self) -> None:
        schedule: dict[tuple[str, str], int] = {}
        while True:
            now = now_ms()
            schedule = self._wanted(schedule, now)
            due = [key for key, at in schedule.items() if at <= now]
            for key in due:
                slug, expression = key
                at = schedule[key]
                schedule[key] = next_cron_ms(expression, max(at, now))
                try:
                    await self.fire(slug, expression, at)
                except Exception:
                    log.exception("cron tick for %s failed", slug)
            delay = None
            if schedule:
                delay = max(0.0, (min(schedule.values()) - now_ms()) / 1000)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def fire(self, slug: str, expression: str, at: int) -> None:
        """One tick: the `inngest/scheduled.timer` event (stored processed) and its run."""
        fn = self._registry.functions.get(slug)
        if fn is None:
            return
        stamp = iso_ms(at)
        event = internal_event(
            {
                "name": "inngest/scheduled.timer",
                "id": stamp,
                "ts": at,
                "data": {"cron": expression, "scheduledAt": stamp, "fireAt": stamp},
            }
        )
        admission = await self._scheduler.admit(fn, [event], "cron")
        built: list[BuiltRun] = []
        if admission.action == "run":
            built.append(
                self._scheduler.build_run(fn, [event], admission=admission, cron=expression)
            )
        elif admission.action in ("drop", "skip"):
            built.append(
                self._scheduler.build_run(
                    fn, [event], admission=admission, cron=expression, status="Skipped"
                )
            )
        tick = self._store.changes()
        tick.events.add(event, received_at=now_ms(), processed=True)
        await self._scheduler.commit_runs(built, tick)
