"""`GET /v2/runs/{id}/trace`: the run as the real server's span tree (proto `FunctionTrace`).

`rootSpan` ("Run") holds one child span per step: finished steps from the memo table (with their
attempts), steps still retrying from the attempt log, and open sleeps / waits / invokes
(`status: "WAITING"`) from the queue and the pause table. Spans are keyed by `stepId` (the
step's hashed id, which rerun's `fromStep.stepId` accepts as well as the step name).
The real server also adds "Finalization" / "executor.nonstep" spans and timing `metadata`;
the devserver gives one span per step and no metadata (README, "Differences").
"""

from __future__ import annotations

import hashlib
from typing import Any

from devserver.records import Attempt
from devserver.runstate import RunState
from devserver.store import Store
from devserver.util import iso_ms
from devserver.views import v2_output

STEP_OPS = {
    "StepRun": "RUN",
    "Step": "RUN",
    "StepError": "RUN",
    "StepFailed": "RUN",
    "StepPlanned": "RUN",
    "Sleep": "SLEEP",
    "WaitForEvent": "WAIT_FOR_EVENT",
    "InvokeFunction": "INVOKE",
    "AIGateway": "AI_GATEWAY",
}
RUN_SPAN_STATUS = {
    "Scheduled": "QUEUED",
    "Running": "RUNNING",
    "Completed": "COMPLETED",
    "Failed": "FAILED",
    "Cancelled": "CANCELLED",
    "Skipped": "SKIPPED",
}


def span_id(*parts: str) -> str:
    """16 hex digits, stable for the same run and step (the real ids are 64-bit hex too)."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:16]


def _timing(
    span: dict[str, Any], queued: int | None, started: int | None, ended: int | None
) -> None:
    if ended is not None and started is not None:
        span["durationMs"] = str(max(0, ended - started))
        span["endedAt"] = iso_ms(ended)
    span["queuedAt"] = iso_ms(queued if queued is not None else started)
    if started is not None:
        span["startedAt"] = iso_ms(started)


def _step_span(
    run_id: str,
    step_hash: str,
    name: str,
    op: str,
    status: str,
    *,
    queued: int | None,
    started: int | None,
    ended: int | None,
    output: Any = None,
    include_output: bool,
    attempts: list[Attempt] | None = None,
) -> dict[str, Any]:
    span: dict[str, Any] = {"id": span_id(run_id, step_hash), "name": name or step_hash}
    if attempts and (len(attempts) > 1 or attempts[-1].status == "Failed"):
        span["children"] = [_attempt_span(run_id, a, include_output) for a in attempts]
    if include_output and output is not None:
        span["output"] = v2_output(output)
    span["status"] = status
    span["stepId"] = step_hash
    span["stepOp"] = STEP_OPS.get(op, "RUN")
    _timing(span, queued, started, ended)
    return dict(sorted(span.items()))


def _attempt_span(run_id: str, attempt: Attempt, include_output: bool) -> dict[str, Any]:
    """One try of a step ("Attempt N", as the real server names them)."""
    span: dict[str, Any] = {
        "id": span_id(run_id, attempt.id),
        "name": f"Attempt {attempt.attempt}",
    }
    failed = attempt.status == "Failed"
    output = attempt.error if failed else attempt.output
    if include_output and output is not None:
        span["output"] = v2_output(output)
    span["status"] = "FAILED" if failed else "COMPLETED"
    _timing(span, attempt.started_at, attempt.started_at, attempt.ended_at)
    return dict(sorted(span.items()))


def _memo_output(memo: Any) -> tuple[Any, bool]:
    """(the step's output, whether the step failed) from a stored memo `{"data"}`/`{"error"}`."""
    if isinstance(memo, dict) and memo.get("error") is not None:
        return memo["error"], True
    if isinstance(memo, dict) and set(memo) == {"data"}:
        return memo["data"], False
    return memo, False


async def build_trace(store: Store, run: RunState, *, include_output: bool) -> dict[str, Any]:
    run_id = run.run_id
    attempts = await store.attempts.of_run(run_id)
    children: list[dict[str, Any]] = []
    seen: set[str] = set()
    for step in await store.steps.of_run(run_id):
        tries = [a for a in attempts if a.step_hash == step.hash]
        output, failed = _memo_output(step.memo)
        started = min((a.started_at for a in tries), default=step.created_at)
        children.append(
            _step_span(
                run_id,
                step.hash,
                step.step_id,
                step.op,
                "FAILED" if failed else "COMPLETED",
                queued=started,
                started=started,
                ended=step.created_at,
                output=output,
                include_output=include_output,
                attempts=tries,
            )
        )
        seen.add(step.hash)
    # Steps that ran but have no memo yet: retrying (or failed with the run).
    for a in attempts:
        if not a.step_hash or a.step_hash in seen:
            continue
        tries = [x for x in attempts if x.step_hash == a.step_hash]
        last = tries[-1]
        failed = last.status == "Failed"
        status = ("FAILED" if run.terminal else "RUNNING") if failed else "RUNNING"
        error = last.error
        children.append(
            _step_span(
                run_id,
                a.step_hash,
                last.step_name,
                last.op,
                status,
                queued=tries[0].started_at,
                started=tries[0].started_at,
                ended=last.ended_at if run.terminal else None,
                output=error,
                include_output=include_output,
                attempts=tries,
            )
        )
        seen.add(a.step_hash)
    if not run.terminal:
        children.extend(await _open_steps(store, run, seen, include_output))
    finalization = _finalization(run, [a for a in attempts if not a.step_hash], include_output)
    if finalization is not None:
        children.append(finalization)
    root: dict[str, Any] = {"children": children} if children else {}
    root["id"] = span_id(run_id)
    if include_output:
        root["input"] = {"data": [_public_event(e) for e in run.events]}
    root["name"] = "Run"
    if include_output and run.terminal and run.output is not None and run.status != "Cancelled":
        root["output"] = v2_output(run.output)
    root["status"] = RUN_SPAN_STATUS.get(run.status, "QUEUED")
    _timing(root, run.queued_at, run.started_at, run.ended_at)
    return {"rootSpan": dict(sorted(root.items())), "runId": run_id}


def _finalization(
    run: RunState, calls: list[Attempt], include_output: bool
) -> dict[str, Any] | None:
    """The calls that ended the run (its return value or its error), as the real server's
    "Finalization" span, with one "Attempt N" child per try when a try failed."""
    if not calls or not run.terminal or run.status == "Cancelled":
        return None
    last = calls[-1]
    failed = last.status == "Failed"
    span: dict[str, Any] = {}
    if failed or len(calls) > 1:
        span["children"] = [_attempt_span(run.run_id, a, include_output) for a in calls]
    span["id"] = span_id(run.run_id, "finalization")
    span["name"] = "Finalization"
    span["status"] = "FAILED" if failed else "COMPLETED"
    _timing(span, calls[0].started_at, calls[0].started_at, last.ended_at)
    return dict(sorted(span.items()))


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


async def _open_steps(
    store: Store, run: RunState, seen: set[str], include_output: bool
) -> list[dict[str, Any]]:
    """Sleeps, waits and invokes the run is waiting on right now (status WAITING)."""
    spans: list[dict[str, Any]] = []
    for pause in await store.pauses.of_run(run.run_id):
        if pause.step_hash in seen:
            continue
        op = "WaitForEvent" if pause.kind == "wait" else "InvokeFunction"
        spans.append(
            _step_span(
                run.run_id,
                pause.step_hash,
                pause.step_name,
                op,
                "WAITING",
                queued=pause.created_at,
                started=pause.created_at,
                ended=None,
                include_output=include_output,
            )
        )
        seen.add(pause.step_hash)
    for job in await store.jobs.sleeping(run.run_id):
        if job.step_hash in seen:
            continue
        name = (job.payload or {}).get("name")
        spans.append(
            _step_span(
                run.run_id,
                job.step_hash,
                str(name or job.step_hash),
                "Sleep",
                "WAITING",
                queued=job.queued_at,
                started=job.queued_at,
                ended=None,
                include_output=include_output,
            )
        )
        seen.add(job.step_hash)
    return spans
