"""The state interface: every read and write of the engine's state goes through `Store`.

Reads are named queries grouped by what they read (`store.runs.get(id)`,
`store.pauses.listening(name)`); writes are gathered in a `Changes` (`changes.runs.finish(run)`,
`changes.jobs.add(job)`) and made durable together by `store.commit(changes)`, one transaction
shared with other callers' commits (group commit, see database.py). This is the seam another
backend (in memory, another SQL layout) implements: nothing else knows the tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Row

from devserver import schema as t
from devserver.changes import Changes
from devserver.database import Database
from devserver.queue import Job
from devserver.records import (
    Attempt,
    Cancellation,
    Pause,
    StepRecord,
    StoredEvent,
    StoredFunction,
    Timer,
    run_from_row,
)
from devserver.registry import AppInfo
from devserver.runstate import RunState
from devserver.util import loads

__all__ = ["Changes", "RunFilter", "Store"]


@dataclass
class RunFilter:
    """Which runs a page holds, in which order; `after` is the keyset cursor (time, run id)."""

    limit: int
    statuses: Sequence[str]
    time_column: str = "queued_at"  # queued_at, started_at or ended_at
    ascending: bool = False
    event_id: str | None = None
    app_names: Sequence[str] = field(default_factory=list)
    function_slugs: Sequence[str] | None = None
    from_ms: int | None = None
    until_ms: int | None = None
    after: tuple[Any, str] | None = None


class _Reads:
    def __init__(self, db: Database) -> None:
        self._db = db


class RunReads(_Reads):
    async def get(self, run_id: str) -> RunState | None:
        """The run without its memos (see StepReads.memos)."""
        row = await self._db.fetch_one(select(t.runs).where(t.runs.c.run_id == run_id))
        return None if row is None else run_from_row(row._mapping)

    def _of_event(self, event_id: str) -> Any:
        linked = select(t.run_events.c.run_id).where(t.run_events.c.event_id == event_id)
        return select(t.runs).where(t.runs.c.run_id.in_(linked)).order_by(t.runs.c.run_id)

    async def of_event(self, event_id: str) -> list[RunState]:
        """Runs the event triggered (or was part of), oldest first."""
        return _runs(await self._db.fetch_all(self._of_event(event_id)))

    async def first_of_event(self, event_id: str) -> RunState | None:
        found = _runs(await self._db.fetch_all(self._of_event(event_id).limit(1)))
        return found[0] if found else None

    async def live_of_function(
        self, slug: str, *, queued_before: int, queued_after: int | None
    ) -> list[RunState]:
        """Scheduled or running runs of the function queued in the window."""
        query = select(t.runs).where(
            t.runs.c.function_slug == slug,
            t.runs.c.status.in_(("Scheduled", "Running")),
            t.runs.c.queued_at <= queued_before,
        )
        if queued_after is not None:
            query = query.where(t.runs.c.queued_at >= queued_after)
        return _runs(await self._db.fetch_all(query))

    async def count_scheduled(self, slug: str) -> int:
        """Runs of the function not started yet."""
        row = await self._db.fetch_one(
            select(func.count())
            .select_from(t.runs)
            .where(t.runs.c.function_slug == slug, t.runs.c.status == "Scheduled")
        )
        return int(row[0]) if row else 0

    async def page(self, wanted: RunFilter) -> list[RunState]:
        runs = t.runs
        column = getattr(runs.c, wanted.time_column)
        query = select(runs).where(runs.c.status.in_(wanted.statuses))
        if wanted.event_id is not None:
            linked = select(t.run_events.c.run_id).where(t.run_events.c.event_id == wanted.event_id)
            query = query.where(runs.c.run_id.in_(linked))
        if wanted.app_names:
            query = query.where(runs.c.app_name.in_(wanted.app_names))
        if wanted.function_slugs is not None:
            query = query.where(runs.c.function_slug.in_(wanted.function_slugs))
        if wanted.time_column != "queued_at":
            query = query.where(column.is_not(None))
        if wanted.from_ms is not None:
            query = query.where(column >= wanted.from_ms)
        if wanted.until_ms is not None:
            query = query.where(column < wanted.until_ms)
        if wanted.after is not None:
            value, last_id = wanted.after
            if wanted.ascending:
                query = query.where(
                    or_(column > value, and_(column == value, runs.c.run_id > last_id))
                )
            else:
                query = query.where(
                    or_(column < value, and_(column == value, runs.c.run_id < last_id))
                )
        if wanted.ascending:
            query = query.order_by(column, runs.c.run_id)
        else:
            query = query.order_by(column.desc(), runs.c.run_id.desc())
        return _runs(await self._db.fetch_all(query.limit(wanted.limit)))


def _runs(rows: Iterable[Row[Any]]) -> list[RunState]:
    return [run_from_row(row._mapping) for row in rows]


class StepReads(_Reads):
    async def memos(self, run_id: str) -> dict[str, Any]:
        """Step hash -> memo, in the order the steps settled."""
        rows = await self._db.fetch_all(
            select(t.steps.c.hash, t.steps.c.memo)
            .where(t.steps.c.run_id == run_id)
            .order_by(t.steps.c.seq)
        )
        return {row.hash: loads(row.memo) for row in rows}

    async def of_run(self, run_id: str) -> list[StepRecord]:
        rows = await self._db.fetch_all(
            select(t.steps).where(t.steps.c.run_id == run_id).order_by(t.steps.c.seq)
        )
        return [StepRecord(r.hash, r.step_id, r.op, loads(r.memo), r.created_at) for r in rows]


class AttemptReads(_Reads):
    async def of_run(self, run_id: str) -> list[Attempt]:
        rows = await self._db.fetch_all(
            select(t.attempts).where(t.attempts.c.run_id == run_id).order_by(t.attempts.c.id)
        )
        return [
            Attempt(**dict(row._mapping, error=loads(row.error), output=loads(row.output)))
            for row in rows
        ]


class JobReads(_Reads):
    async def all(self) -> list[Job]:
        """Every queued job, with its run's flow-control keys and priority (restart)."""
        keys = {
            row.run_id: (loads(row.run_keys) or {}, int(row.priority_ms or 0))
            for row in await self._db.fetch_all(
                select(t.runs.c.run_id, t.runs.c.run_keys, t.runs.c.priority_ms).where(
                    t.runs.c.run_id.in_(select(t.jobs.c.run_id))
                )
            )
        }
        jobs = []
        for row in await self._db.fetch_all(select(t.jobs)):
            run_keys, priority_ms = keys.get(row.run_id, ({}, 0))
            jobs.append(_job(row, run_keys=run_keys, priority_ms=priority_ms))
        return jobs

    async def sleeping(self, run_id: str) -> list[Job]:
        rows = await self._db.fetch_all(
            select(t.jobs).where(t.jobs.c.run_id == run_id, t.jobs.c.kind == "sleep")
        )
        return [_job(row) for row in rows]

    async def count_due(self, slug: str, kinds: Iterable[str], now_ms: int) -> int:
        row = await self._db.fetch_one(
            select(func.count())
            .select_from(t.jobs)
            .where(
                t.jobs.c.function_slug == slug,
                t.jobs.c.kind.in_(list(kinds)),
                t.jobs.c.run_at <= now_ms,
            )
        )
        return int(row[0]) if row else 0


def _job(row: Row[Any], *, run_keys: dict[str, Any] | None = None, priority_ms: int = 0) -> Job:
    return Job(
        job_id=row.job_id,
        run_id=row.run_id,
        function_slug=row.function_slug,
        kind=row.kind,
        step_hash=row.step_hash,
        attempt=row.attempt,
        run_at=row.run_at,
        queued_at=row.queued_at,
        payload=loads(row.payload),
        priority_ms=priority_ms,
        run_keys=run_keys or {},
    )


class PauseReads(_Reads):
    async def _where(self, *conditions: Any) -> list[Pause]:
        rows = await self._db.fetch_all(select(t.pauses).where(*conditions))
        return [Pause(**row._mapping) for row in rows]

    async def get(self, pause_id: str) -> Pause | None:
        found = await self._where(t.pauses.c.pause_id == pause_id)
        return found[0] if found else None

    async def event_names(self) -> set[str]:
        """Names of the events some pause listens for."""
        rows = await self._db.fetch_all(select(t.pauses.c.event_name).distinct())
        return {row.event_name for row in rows}

    async def listening(self, event_name: str) -> list[Pause]:
        """wait_for_event and cancel_on pauses for events of that name."""
        return await self._where(
            t.pauses.c.event_name == event_name, t.pauses.c.kind.in_(("wait", "cancel"))
        )

    async def awaiting_invoke(self, correlation_id: str) -> list[Pause]:
        return await self._where(
            t.pauses.c.kind == "invoke", t.pauses.c.correlation_id == correlation_id
        )

    async def of_run(self, run_id: str) -> list[Pause]:
        return await self._where(t.pauses.c.run_id == run_id)


class EventReads(_Reads):
    async def ids_since(self, since_ms: int) -> dict[str, int]:
        """User-given event id -> when received, for events received after since_ms (dedup)."""
        rows = await self._db.fetch_all(
            select(t.events.c.event_id, t.events.c.received_at, t.events.c.internal_id).where(
                t.events.c.received_at > since_ms
            )
        )
        return {r.event_id: r.received_at for r in rows if r.event_id != r.internal_id}

    async def unprocessed(self) -> list[dict[str, Any]]:
        """Stored events whose runs were never scheduled (a crash), with `_internal_id`."""
        rows = await self._db.fetch_all(
            select(t.events.c.body, t.events.c.internal_id)
            .where(t.events.c.processed == 0)
            .order_by(t.events.c.internal_id)
        )
        return [dict(loads(row.body), _internal_id=row.internal_id) for row in rows]

    async def known(self, internal_ids: list[str]) -> set[str]:
        """Which of these internal ids are stored already."""
        rows = await self._db.fetch_all(
            select(t.events.c.internal_id).where(t.events.c.internal_id.in_(internal_ids))
        )
        return {row.internal_id for row in rows}

    async def get(self, internal_id: str) -> StoredEvent | None:
        found = await self._select(select(t.events).where(t.events.c.internal_id == internal_id))
        return found[0] if found else None

    async def page(
        self,
        *,
        limit: int,
        name: str | None = None,
        before_id: str | None = None,
        received_from: int | None = None,
        received_until: int | None = None,
    ) -> list[StoredEvent]:
        """Newest first; `before_id` pages on (internal ids are time-ordered ULIDs)."""
        query = select(t.events).order_by(t.events.c.internal_id.desc())
        if name:
            query = query.where(t.events.c.name == name)
        if before_id:
            query = query.where(t.events.c.internal_id < before_id)
        if received_from is not None:
            query = query.where(t.events.c.received_at >= received_from)
        if received_until is not None:
            query = query.where(t.events.c.received_at <= received_until)
        return await self._select(query.limit(limit))

    async def invokes_with_key(self, key: str, *, since_ms: int) -> list[StoredEvent]:
        """`inngest/function.invoked` events carrying this idempotency key as their id."""
        return await self._select(
            select(t.events).where(
                t.events.c.event_id == key,
                t.events.c.name == "inngest/function.invoked",
                t.events.c.received_at >= since_ms,
            )
        )

    async def _select(self, query: Any) -> list[StoredEvent]:
        rows = await self._db.fetch_all(query)
        return [StoredEvent(r.internal_id, r.received_at, loads(r.body)) for r in rows]


class TimerReads(_Reads):
    async def all(self) -> list[Timer]:
        return [_timer(row) for row in await self._db.fetch_all(select(t.timers))]

    async def get(self, key: str) -> Timer | None:
        row = await self._db.fetch_one(select(t.timers).where(t.timers.c.key == key))
        return None if row is None else _timer(row)


def _timer(row: Row[Any]) -> Timer:
    return Timer(row.key, row.at_ms, loads(row.payload))


class AppReads(_Reads):
    async def apps(self) -> list[AppInfo]:
        return [AppInfo(**row._mapping) for row in await self._db.fetch_all(select(t.apps))]

    async def functions(self) -> list[StoredFunction]:
        """Every function ever synced, archived ones included."""
        rows = await self._db.fetch_all(select(t.functions))
        return [
            StoredFunction(r.slug, r.uuid, r.app_name, loads(r.config), bool(r.archived))
            for r in rows
        ]


class CancellationReads(_Reads):
    async def all(self) -> list[Cancellation]:
        """Newest first."""
        rows = await self._db.fetch_all(
            select(t.cancellations).order_by(t.cancellations.c.id.desc())
        )
        return [Cancellation(**row._mapping) for row in rows]


class Store:
    """The engine's state on a SQL database (SQLite or Postgres)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.runs = RunReads(db)
        self.steps = StepReads(db)
        self.attempts = AttemptReads(db)
        self.jobs = JobReads(db)
        self.pauses = PauseReads(db)
        self.events = EventReads(db)
        self.timers = TimerReads(db)
        self.apps = AppReads(db)
        self.cancellations = CancellationReads(db)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    @staticmethod
    def changes() -> Changes:
        return Changes()

    async def commit(self, changes: Changes) -> None:
        """Make the changes durable (one transaction); returns once committed."""
        await self.db.write(changes.ops)
