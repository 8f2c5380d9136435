"""How a run moves forward once a step is settled: memos, attempts, the run's scheduling state,
the next discovery call and the retry backoff. Shared by the executor and the waits."""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from sqlalchemy import delete, insert, update

from devserver import store as t
from devserver.queue import Job, new_job
from devserver.runstate import RunState
from devserver.store import Op
from devserver.util import dumps, new_ulid, now_ms

BACKOFF_TABLE_S = [15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200]


def job_insert(job: Job) -> Op:
    return (
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


def job_delete(job: Job) -> Op:
    return (delete(t.jobs).where(t.jobs.c.job_id == job.job_id), None)


class RunProgress:
    def __init__(self, *, retry_interval_s: float) -> None:
        self._retry_interval_s = retry_interval_s
        self._seq = itertools.count(time.time_ns())

    def next_seq(self) -> int:
        """Memo order (steps.seq): increasing across restarts, unique within the process."""
        return next(self._seq)

    def backoff_ms(self, attempt: int) -> int:
        """Inngest's retry table (with 0-30 s jitter) unless a fixed retry interval is set."""
        if self._retry_interval_s > 0:
            return int(self._retry_interval_s * 1000)
        base = BACKOFF_TABLE_S[min(attempt, len(BACKOFF_TABLE_S) - 1)]
        return int((base + random.uniform(0, 30)) * 1000)

    def memo_op(
        self, run: RunState, step_hash: str, step_id: str, op: str, memo: Any, ops: list[Op]
    ) -> None:
        if step_hash in run.memos:
            ops.append(
                (
                    delete(t.steps).where(
                        t.steps.c.run_id == run.run_id, t.steps.c.hash == step_hash
                    ),
                    None,
                )
            )
        run.memos[step_hash] = memo
        ops.append(
            (
                insert(t.steps),
                {
                    "run_id": run.run_id,
                    "hash": step_hash,
                    "seq": self.next_seq(),
                    "step_id": step_id,
                    "op": op,
                    "memo": dumps(memo),
                    "created_at": now_ms(),
                },
            )
        )

    @staticmethod
    def attempt_op(
        run: RunState,
        job: Job,
        *,
        step_hash: str,
        step_name: str,
        op: str,
        started: int,
        ended: int,
        status: str,
        error: Any = None,
        output: Any = None,
    ) -> Op:
        return (
            insert(t.attempts),
            {
                "id": new_ulid(),
                "run_id": run.run_id,
                "job_kind": job.kind,
                "step_hash": step_hash,
                "step_name": step_name,
                "op": op,
                "attempt": job.attempt,
                "started_at": started,
                "ended_at": ended,
                "status": status,
                "error": None if error is None else dumps(error),
                "output": None if output is None else dumps(output),
            },
        )

    @staticmethod
    def state_op(run: RunState, ops: list[Op]) -> None:
        state = run.state_json()
        if state == run.saved_state:
            return  # sequential steps never change it: no write
        run.saved_state = state
        ops.append((update(t.runs).where(t.runs.c.run_id == run.run_id), {"state": state}))

    @staticmethod
    def reschedule_op(job: Job) -> Op:
        return (
            update(t.jobs).where(t.jobs.c.job_id == job.job_id),
            {"attempt": job.attempt, "run_at": job.run_at},
        )

    def maybe_discover(
        self,
        run: RunState,
        ops: list[Op],
        follow: list[Job],
        *,
        any_resolved: bool,
        race: bool,
        reuse: Job | None = None,
    ) -> bool:
        """Enqueue discovery when nothing is pending (or in race mode after any completion).
        Returns True when `reuse` (a finished job) was turned into that discovery job."""
        reused = False
        if not run.pending or (race and any_resolved):
            if not run.pending:
                run.force_plan = False
            if reuse is not None:
                reuse.kind = "discovery"
                reuse.step_hash = ""
                reuse.attempt = 0
                reuse.run_at = now_ms()
                reuse.payload = None
                reuse.removed = False
                ops.append(
                    (
                        update(t.jobs).where(t.jobs.c.job_id == reuse.job_id),
                        {
                            "kind": "discovery",
                            "step_hash": "",
                            "attempt": 0,
                            "run_at": reuse.run_at,
                            "payload": None,
                        },
                    )
                )
                follow.append(reuse)
                reused = True
            else:
                discovery = new_job(run, "discovery")
                ops.append(job_insert(discovery))
                follow.append(discovery)
        self.state_op(run, ops)
        return reused
