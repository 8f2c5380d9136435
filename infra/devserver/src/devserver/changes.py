"""The write side of the store: state changes gathered by name, committed in one transaction.

    changes = store.changes()
    changes.steps.save_memo(...); changes.jobs.delete(job.job_id); changes.runs.save_state(run)
    await store.commit(changes)

Callers say what changed; only this module knows the statements (and `store.py` the reads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, update

from devserver import schema as t
from devserver.database import Op
from devserver.queue import Job
from devserver.records import Attempt, Cancellation, Pause, run_row
from devserver.registry import AppInfo
from devserver.runstate import RunState
from devserver.util import dumps


class _Part:
    __slots__ = ("_ops",)

    def __init__(self, ops: list[Op]) -> None:
        self._ops = ops


class RunChanges(_Part):
    __slots__ = ()

    def add(self, run: RunState, event_ids: Iterable[str]) -> None:
        """A new run, linked to the events that triggered it."""
        self._ops.append((insert(t.runs), run_row(run)))
        links = [{"event_id": event_id, "run_id": run.run_id} for event_id in event_ids]
        if links:
            self._ops.append((insert(t.run_events), links))

    def mark_started(self, run: RunState) -> None:
        self._ops.append(
            (
                update(t.runs).where(t.runs.c.run_id == run.run_id),
                {"started_at": run.started_at, "status": run.status},
            )
        )

    def save_state(self, run_id: str, state: str) -> None:
        """The run's scheduling state (pending steps, plan mode) as RunState.state_json()."""
        self._ops.append((update(t.runs).where(t.runs.c.run_id == run_id), {"state": state}))

    def finish(self, run: RunState) -> None:
        """The run's final status and outcome; its queued jobs and pauses are dropped."""
        self._ops.append(
            (
                update(t.runs).where(t.runs.c.run_id == run.run_id),
                {
                    "status": run.status,
                    "ended_at": run.ended_at,
                    "output": None if run.output is None else dumps(run.output),
                    "error": None if run.error is None else dumps(run.error),
                    "state": run.state_json(),
                    "reason": run.reason,
                    "started_at": run.started_at,
                },
            )
        )
        self._ops.append((delete(t.jobs).where(t.jobs.c.run_id == run.run_id), None))
        self._ops.append((delete(t.pauses).where(t.pauses.c.run_id == run.run_id), None))


class StepChanges(_Part):
    __slots__ = ()

    def save_memo(
        self,
        run_id: str,
        step_hash: str,
        *,
        step_id: str,
        op: str,
        memo: Any,
        seq: int,
        created_at: int,
        replace: bool = False,
    ) -> None:
        """A settled step; `replace` when the step already had a memo (a retried wait)."""
        if replace:
            self._ops.append(
                (
                    delete(t.steps).where(t.steps.c.run_id == run_id, t.steps.c.hash == step_hash),
                    None,
                )
            )
        self._ops.append(
            (
                insert(t.steps),
                {
                    "run_id": run_id,
                    "hash": step_hash,
                    "seq": seq,
                    "step_id": step_id,
                    "op": op,
                    "memo": dumps(memo),
                    "created_at": created_at,
                },
            )
        )


class AttemptChanges(_Part):
    __slots__ = ()

    def add(self, attempt: Attempt) -> None:
        self._ops.append(
            (
                insert(t.attempts),
                {
                    "id": attempt.id,
                    "run_id": attempt.run_id,
                    "job_kind": attempt.job_kind,
                    "step_hash": attempt.step_hash,
                    "step_name": attempt.step_name,
                    "op": attempt.op,
                    "attempt": attempt.attempt,
                    "started_at": attempt.started_at,
                    "ended_at": attempt.ended_at,
                    "status": attempt.status,
                    "error": None if attempt.error is None else dumps(attempt.error),
                    "output": None if attempt.output is None else dumps(attempt.output),
                },
            )
        )


class JobChanges(_Part):
    __slots__ = ()

    def add(self, job: Job) -> None:
        self._ops.append(
            (
                insert(t.jobs),
                {
                    "job_id": job.job_id,
                    "run_id": job.run_id,
                    "function_slug": job.function_slug,
                    "kind": job.kind,
                    "step_hash": job.step_hash,
                    "attempt": job.attempt,
                    "run_at": job.run_at,
                    "queued_at": job.queued_at,
                    "payload": None if job.payload is None else dumps(job.payload),
                },
            )
        )

    def delete(self, job_id: str) -> None:
        self._ops.append((delete(t.jobs).where(t.jobs.c.job_id == job_id), None))

    def reschedule(self, job: Job) -> None:
        """A retry: the job's new attempt number and time."""
        self._ops.append(
            (
                update(t.jobs).where(t.jobs.c.job_id == job.job_id),
                {"attempt": job.attempt, "run_at": job.run_at},
            )
        )

    def rewrite(self, job: Job) -> None:
        """The row now holds what `job` became (a finished step job reused for discovery)."""
        self._ops.append(
            (
                update(t.jobs).where(t.jobs.c.job_id == job.job_id),
                {
                    "kind": job.kind,
                    "step_hash": job.step_hash,
                    "attempt": job.attempt,
                    "run_at": job.run_at,
                    "payload": None if job.payload is None else dumps(job.payload),
                },
            )
        )


class PauseChanges(_Part):
    __slots__ = ()

    def add(self, pause: Pause) -> None:
        self._ops.append(
            (
                insert(t.pauses),
                {
                    "pause_id": pause.pause_id,
                    "run_id": pause.run_id,
                    "kind": pause.kind,
                    "event_name": pause.event_name,
                    "expression": pause.expression,
                    "step_hash": pause.step_hash,
                    "step_name": pause.step_name,
                    "correlation_id": pause.correlation_id,
                    "expires_at": pause.expires_at,
                    "timeout_job_id": pause.timeout_job_id,
                    "created_at": pause.created_at,
                },
            )
        )

    def delete(self, pause_id: str) -> None:
        self._ops.append((delete(t.pauses).where(t.pauses.c.pause_id == pause_id), None))


def _event_row(event: Mapping[str, Any], received_at: int, processed: bool) -> dict[str, Any]:
    body = {k: v for k, v in event.items() if k != "_internal_id"}
    return {
        "internal_id": event["_internal_id"],
        "name": body["name"],
        "event_id": body["id"],
        "ts": body["ts"],
        "received_at": received_at,
        "body": dumps(body),
        "processed": 1 if processed else 0,
    }


class EventChanges(_Part):
    __slots__ = ()

    def add(self, event: Mapping[str, Any], *, received_at: int, processed: bool = False) -> None:
        """A normalized event keyed by its `_internal_id` (stored without that key)."""
        self._ops.append((insert(t.events), _event_row(event, received_at, processed)))

    def add_many(self, events: Iterable[Mapping[str, Any]], *, received_at: int) -> None:
        rows = [_event_row(event, received_at, False) for event in events]
        if rows:
            self._ops.append((insert(t.events), rows))

    def mark_processed(self, internal_id: str) -> None:
        """Its runs are scheduled (in the same transaction): never processed again."""
        self._ops.append(
            (update(t.events).where(t.events.c.internal_id == internal_id), {"processed": 1})
        )


class TimerChanges(_Part):
    __slots__ = ()

    def set(self, key: str, at_ms: int, payload: Mapping[str, Any]) -> None:
        self.delete(key)
        self._ops.append(
            (insert(t.timers), {"key": key, "at_ms": at_ms, "payload": dumps(payload)})
        )

    def delete(self, key: str) -> None:
        self._ops.append((delete(t.timers).where(t.timers.c.key == key), None))


class AppChanges(_Part):
    """Registered apps and their functions (function rows are kept, archived, when removed)."""

    __slots__ = ()

    def save_app(self, app: AppInfo, *, new: bool) -> None:
        row = {
            "name": app.name,
            "id": app.id,
            "url": app.url,
            "sdk": app.sdk,
            "framework": app.framework,
            "checksum": app.checksum,
            "error": app.error,
            "created_at": app.created_at,
            "updated_at": app.updated_at,
        }
        if new:
            self._ops.append((insert(t.apps), row))
        else:
            self._ops.append((update(t.apps).where(t.apps.c.name == app.name), row))

    def save_function(
        self, config: Mapping[str, Any], *, app_name: str, now: int, new_uuid: str | None
    ) -> None:
        """A synced function: inserted with `new_uuid`, or updated (and unarchived) when None."""
        slug = str(config["id"])
        values = {
            "slug": slug,
            "app_name": app_name,
            "name": str(config.get("name") or slug),
            "config": dumps(config),
            "archived": 0,
            "updated_at": now,
        }
        if new_uuid is not None:
            self._ops.append((insert(t.functions), dict(values, uuid=new_uuid, created_at=now)))
        else:
            self._ops.append((update(t.functions).where(t.functions.c.slug == slug), values))

    def archive_function(self, slug: str, *, now: int) -> None:
        self._ops.append(
            (
                update(t.functions).where(t.functions.c.slug == slug),
                {"archived": 1, "updated_at": now},
            )
        )


class CancellationChanges(_Part):
    __slots__ = ()

    def add(self, cancellation: Cancellation) -> None:
        self._ops.append(
            (
                insert(t.cancellations),
                {
                    "id": cancellation.id,
                    "app_name": cancellation.app_name,
                    "function_slug": cancellation.function_slug,
                    "started_after": cancellation.started_after,
                    "started_before": cancellation.started_before,
                    "expression": cancellation.expression,
                    "cancelled": cancellation.cancelled,
                    "created_at": cancellation.created_at,
                },
            )
        )


class Changes:
    """State changes to commit together; each group names what it changes."""

    __slots__ = (
        "apps",
        "attempts",
        "cancellations",
        "events",
        "jobs",
        "ops",
        "pauses",
        "runs",
        "steps",
        "timers",
    )

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.runs = RunChanges(self.ops)
        self.steps = StepChanges(self.ops)
        self.attempts = AttemptChanges(self.ops)
        self.jobs = JobChanges(self.ops)
        self.pauses = PauseChanges(self.ops)
        self.events = EventChanges(self.ops)
        self.timers = TimerChanges(self.ops)
        self.apps = AppChanges(self.ops)
        self.cancellations = CancellationChanges(self.ops)

    def include(self, other: Changes) -> None:
        """Commit `other`'s changes with these (after them)."""
        self.ops.extend(other.ops)

    def __bool__(self) -> bool:
        return bool(self.ops)
