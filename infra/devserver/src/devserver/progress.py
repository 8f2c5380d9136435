"""How a run moves forward once a step is settled: memos, attempts, the run's scheduling state,
the next discovery call and the retry backoff. Shared by the executor, the waits and the AI
gateway."""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from devserver.queue import Job, new_job
from devserver.records import Attempt
from devserver.runstate import RunState
from devserver.store import Changes
from devserver.util import new_ulid, now_ms

BACKOFF_TABLE_S = [15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200]


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

    def save_memo(
        self, run: RunState, step_hash: str, step_id: str, op: str, memo: Any, changes: Changes
    ) -> None:
        """The step settled with this memo (in memory now, stored with `changes`)."""
        replace = step_hash in run.memos
        run.memos[step_hash] = memo
        changes.steps.save_memo(
            run.run_id,
            step_hash,
            step_id=step_id,
            op=op,
            memo=memo,
            seq=self.next_seq(),
            created_at=now_ms(),
            replace=replace,
        )

    @staticmethod
    def record_attempt(
        changes: Changes,
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
    ) -> None:
        changes.attempts.add(
            Attempt(
                id=new_ulid(),
                run_id=run.run_id,
                job_kind=job.kind,
                step_hash=step_hash,
                step_name=step_name,
                op=op,
                attempt=job.attempt,
                started_at=started,
                ended_at=ended,
                status=status,
                error=error,
                output=output,
            )
        )

    @staticmethod
    def save_state(run: RunState, changes: Changes) -> None:
        state = run.state_json()
        if state == run.saved_state:
            return  # sequential steps never change it: no write
        run.saved_state = state
        changes.runs.save_state(run.run_id, state)

    def maybe_discover(
        self,
        run: RunState,
        changes: Changes,
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
                changes.jobs.rewrite(reuse)
                follow.append(reuse)
                reused = True
            else:
                discovery = new_job(run, "discovery")
                changes.jobs.add(discovery)
                follow.append(discovery)
        self.save_state(run, changes)
        return reused
