"""Executor: calls the SDK for each job and turns its answer (200 / 206 ops / errors) into
memos, new jobs, pauses and run outcomes (infra/devserver/docs/calls.md,
infra/devserver/docs/executor.md)."""

from __future__ import annotations

import functools
import json
import logging
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import delete, insert, update

from devserver import store as t
from devserver.http1 import HttpError
from devserver.queue import Job
from devserver.runstate import RunState
from devserver.signing import sign_body
from devserver.store import Op
from devserver.util import (
    MAX_STEP_OUTPUT_BYTES,
    dumps,
    new_ulid,
    now_ms,
    parse_iso_ms,
    parse_time_or_duration_ms,
)
from devserver.waits import MAX_SLEEP_MS

if TYPE_CHECKING:
    from devserver.engine import Engine
    from devserver.registry import FunctionDef

log = logging.getLogger("devserver.executor")

MAX_STEPS = 1000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
SDK_REQUEST_TIMEOUT_S = 7200.0  # as Inngest: 2 h per SDK request
BACKOFF_TABLE_S = [15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200]


class CallOutcome:
    """A normalized SDK answer."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str], error: str | None):
        self.status = status
        self.body = body
        self.headers = headers
        self.transport_error = error

    @property
    def no_retry(self) -> bool:
        return self.headers.get("x-inngest-no-retry", "").lower() == "true"


def _error_object(body: Any, fallback: str) -> dict[str, Any]:
    if isinstance(body, Mapping) and (body.get("name") or body.get("message")):
        name = str(body.get("name") or "Error")
        message = str(body.get("message") or "")
        error = {"error": f"{name}: {message}", "name": name, "message": message}
        if body.get("stack"):
            error["stack"] = str(body["stack"])
        return error
    return {"error": fallback, "name": "Error", "message": fallback}


class ExecutorMixin:
    # ------------------------------------------------------------------ dispatch
    async def _handle_job(self: Engine, job: Job) -> None:
        if job.kind == "timer":
            self.queue.remove(job)
            await self._fire_timer(job)
            return
        run = await self.get_run(job.run_id)
        if run is None or run.terminal or job.removed:
            if job.kind != "timer":
                await self.store.write([self.job_delete(job)])
            self.queue.remove(job)
            return
        if job.kind in ("start", "discovery", "step"):
            await self._call_sdk(job)
        elif job.kind == "sleep":
            await self._resolve_from_job(job, None)
        elif job.kind == "pause_timeout":
            await self._pause_timeout(job)
        elif job.kind == "ai":
            await self._ai_call(job)
        elif job.kind == "run_timeout":
            await self._run_timeout(job)
        else:
            log.error("unknown job kind %s", job.kind)
            await self.store.write([self.job_delete(job)])
            self.queue.remove(job)

    def _backoff_ms(self: Engine, attempt: int) -> int:
        if self.settings.retry_interval > 0:
            return int(self.settings.retry_interval * 1000)
        base = BACKOFF_TABLE_S[min(attempt, len(BACKOFF_TABLE_S) - 1)]
        return int((base + random.uniform(0, 30)) * 1000)

    # ------------------------------------------------------------------ SDK call
    def _request(
        self: Engine, run: RunState, job: Job, fn: FunctionDef
    ) -> tuple[str, bytes, dict[str, str]]:
        step_id = job.step_hash or "step"
        stack = list(run.memos.keys())
        request_id = new_ulid()
        body = {
            "event": run.events[0],
            "events": run.events,
            "steps": run.memos,
            "defers": {},
            "ctx": {
                "fn_id": fn.uuid,
                "run_id": run.run_id,
                "env": "",
                "step_id": step_id,
                "attempt": job.attempt,
                "max_attempts": fn.max_attempts,
                "stack": {"stack": stack, "current": len(stack)},
                "qi_id": job.job_id,
                "request_id": request_id,
                "generation_id": 0,
                "job_id": job.job_id,
                "disable_immediate_execution": run.force_plan,
                "use_api": False,
            },
            "version": 2,
            "use_api": False,
        }
        headers = {
            "content-type": "application/json",
            "x-run-id": run.run_id,
            "x-request-id": request_id,
            "x-inngest-job-id": job.job_id,
            "x-inngest-req-version": "2",
            "x-inngest-step-id": step_id,
        }
        content = dumps(body).encode()
        if len(content) > MAX_REQUEST_BYTES:
            # As Inngest: too big to send inline, the SDK fetches memos (and events) through
            # /v0/runs/{id}/actions and /batch instead.
            body["steps"] = {}
            body["use_api"] = True
            body["ctx"]["use_api"] = True  # type: ignore[index]
            content = dumps(body).encode()
            if len(content) > MAX_REQUEST_BYTES:
                body["events"] = []
                content = dumps(body).encode()
        if self.settings.signing_key:
            content, signature = sign_body(body, self.settings.signing_key)
            headers["x-inngest-signature"] = signature
        return _call_url(fn.url, step_id), content, headers

    async def _post(self: Engine, url: str, content: bytes, headers: dict[str, str]) -> CallOutcome:
        try:
            response = await self.sdk_http.request(
                "POST", url, headers=headers, body=content, timeout=SDK_REQUEST_TIMEOUT_S
            )
        except HttpError as error:
            return CallOutcome(0, None, {}, f"request to {url} failed: {error}")
        resp_headers = response.headers
        status = response.status
        text = response.body
        body: Any = None
        if status == 201:
            # Streaming: whitespace keep-alives, then {"body", "headers", "status"}.
            try:
                envelope = json.loads(text) if text.strip() else {}
                status = int(envelope.get("status", 500))
                inner = envelope.get("body")
                body = json.loads(inner) if isinstance(inner, str) else inner
                resp_headers.update(
                    {k.lower(): str(v) for k, v in (envelope.get("headers") or {}).items()}
                )
            except Exception:
                return CallOutcome(0, None, resp_headers, "unparseable streaming response")
            return CallOutcome(status, body, resp_headers, None)
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                body = text.decode(errors="replace")
        if "x-inngest-sdk" not in resp_headers:
            return CallOutcome(
                status, body, resp_headers, "The response did not come from an Inngest SDK"
            )
        return CallOutcome(status, body, resp_headers, None)

    async def _call_sdk(self: Engine, job: Job) -> None:
        run = await self.get_run(job.run_id)
        if run is None or run.terminal:
            return
        fn = self.registry.all_functions.get(run.function_slug)
        if fn is None:
            async with self.lock(run.run_id):
                ops: list[Op] = [self.job_delete(job)]
                error = {
                    "error": "function not found",
                    "name": "Error",
                    "message": f"function {run.function_slug} is not registered",
                }
                emitted = self.finalize_ops(run, "Failed", ops=ops, error=error)
                await self.store.write(ops)
            await self.after_finalize(run, emitted)
            return
        if run.started_at is None:
            async with self.lock(run.run_id):
                if run.started_at is None:
                    run.started_at = now_ms()
                    run.status = "Running"
                    await self.store.write(
                        [
                            (
                                update(t.runs).where(t.runs.c.run_id == run.run_id),
                                {"started_at": run.started_at, "status": "Running"},
                            )
                        ]
                    )
                    self._finish_timeout_job(fn, run)
        url, content, headers = self._request(run, job, fn)
        started = now_ms()
        outcome = await self._post(url, content, headers)
        ended = now_ms()
        emitted: list[dict[str, Any]] = []
        follow: list[Job] = []
        async with self.lock(run.run_id):
            current = await self.get_run(run.run_id)
            if current is None or current.terminal or job.removed:
                return  # cancelled while in flight: results are discarded
            run = current
            ops: list[Op] = []
            emitted = self._apply_outcome(run, job, fn, outcome, started, ended, ops, follow)
            await self.store.write(ops)
        if run.terminal:
            await self.after_finalize(run, emitted)
            return
        if job not in follow:
            self.queue.remove(job)
        for new_job in follow:
            self.queue.push(new_job)
        for event in emitted:
            self.enqueue_event(event)

    def _attempt_op(
        self: Engine,
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

    def _retry_or_fail(
        self: Engine,
        run: RunState,
        job: Job,
        fn: FunctionDef,
        error: dict[str, Any],
        ops: list[Op],
        follow: list[Job],
        *,
        no_retry: bool,
        retry_after: str | None = None,
    ) -> list[dict[str, Any]]:
        if no_retry or job.attempt + 1 >= fn.max_attempts:
            ops.append(self.job_delete(job))
            return self.finalize_ops(run, "Failed", ops=ops, error=error)
        delay = self._backoff_ms(job.attempt)
        if retry_after:
            delay = _retry_after_ms(retry_after, delay)
        job.attempt += 1
        job.run_at = now_ms() + delay
        ops.append(
            (
                update(t.jobs).where(t.jobs.c.job_id == job.job_id),
                {"attempt": job.attempt, "run_at": job.run_at},
            )
        )
        follow.append(job)
        return []

    def _apply_outcome(
        self: Engine,
        run: RunState,
        job: Job,
        fn: FunctionDef,
        outcome: CallOutcome,
        started: int,
        ended: int,
        ops: list[Op],
        follow: list[Job],
    ) -> list[dict[str, Any]]:
        if outcome.transport_error is not None or outcome.status not in (200, 206):
            message = outcome.transport_error or f"invalid status code: {outcome.status}"
            error = _error_object(outcome.body, message)
            ops.append(
                self._attempt_op(
                    run,
                    job,
                    step_hash=job.step_hash,
                    step_name="",
                    op="Function",
                    started=started,
                    ended=ended,
                    status="Failed",
                    error=error,
                )
            )
            no_retry = outcome.no_retry and outcome.transport_error is None
            return self._retry_or_fail(
                run,
                job,
                fn,
                error,
                ops,
                follow,
                no_retry=no_retry,
                retry_after=outcome.headers.get("retry-after"),
            )
        if outcome.status == 200:
            ops.append(self.job_delete(job))
            ops.append(
                self._attempt_op(
                    run,
                    job,
                    step_hash="",
                    step_name="",
                    op="RunComplete",
                    started=started,
                    ended=ended,
                    status="Completed",
                    output=outcome.body,
                )
            )
            return self.finalize_ops(run, "Completed", ops=ops, output=outcome.body)
        op_list = outcome.body if isinstance(outcome.body, list) else []
        valid = [o for o in op_list if isinstance(o, Mapping) and isinstance(o.get("id"), str)]
        if not valid:
            error = {
                "error": "invalid response",
                "name": "Error",
                "message": "206 response without a list of opcodes",
            }
            return self._retry_or_fail(run, job, fn, error, ops, follow, no_retry=False)
        return self._apply_ops(run, job, fn, valid, outcome, started, ended, ops, follow)

    def _apply_ops(
        self: Engine,
        run: RunState,
        job: Job,
        fn: FunctionDef,
        op_list: list[Mapping[str, Any]],
        outcome: CallOutcome,
        started: int,
        ended: int,
        ops: list[Op],
        follow: list[Job],
    ) -> list[dict[str, Any]]:
        emitted: list[dict[str, Any]] = []
        if len(run.memos) + len(op_list) > MAX_STEPS:
            message = f"The function run exceeded the step limit of {MAX_STEPS} steps."
            ops.append(self.job_delete(job))
            error = {"error": message, "name": "StepLimitError", "message": message}
            return self.finalize_ops(run, "Failed", ops=ops, error=error)
        if len(op_list) > 1:
            run.force_plan = True
        race = False
        resolved: list[str] = []
        new_pending: set[str] = set()
        retry = False
        # WaitForEvent first: a wait is registered before a sibling step can emit its event.
        ordered = sorted(op_list, key=lambda o: 0 if o.get("op") == "WaitForEvent" else 1)
        for op in ordered:
            kind = str(op.get("op"))
            step_hash = str(op["id"])
            name = str(op.get("displayName") or op.get("name") or "")
            raw_opts = op.get("opts")
            opts: Mapping[str, Any] = raw_opts if isinstance(raw_opts, Mapping) else {}
            if opts and opts.get("parallelMode") == "race":
                race = True
            if kind == "StepRun":
                memo = {"data": op.get("data")}
                size = len(dumps(memo).encode())
                if size > MAX_STEP_OUTPUT_BYTES:
                    error = {
                        "error": "step output too large",
                        "name": "OutputTooLargeError",
                        "message": f"step {name!r} output is {size} bytes; the limit is "
                        f"{MAX_STEP_OUTPUT_BYTES} bytes",
                    }
                    ops.append(self.job_delete(job))
                    return self.finalize_ops(run, "Failed", ops=ops, error=error)
                self._memo_op(run, step_hash, name, kind, memo, ops)
                ops.append(
                    self._attempt_op(
                        run,
                        job,
                        step_hash=step_hash,
                        step_name=name,
                        op=kind,
                        started=started,
                        ended=ended,
                        status="Completed",
                        output=op.get("data"),
                    )
                )
                resolved.append(step_hash)
            elif kind in ("StepError", "StepFailed"):
                op_error = op.get("error")
                raw_error: Mapping[str, Any] = op_error if isinstance(op_error, Mapping) else {}
                error = _error_object(raw_error, "step failed")
                final = (
                    kind == "StepFailed" or outcome.no_retry or job.attempt + 1 >= fn.max_attempts
                )
                ops.append(
                    self._attempt_op(
                        run,
                        job,
                        step_hash=step_hash,
                        step_name=name,
                        op=kind,
                        started=started,
                        ended=ended,
                        status="Failed",
                        error=error,
                    )
                )
                if final:
                    memo_error = dict(raw_error) or dict(error)
                    memo_error.setdefault("name", error["name"])
                    memo_error.setdefault("message", error["message"])
                    self._memo_op(run, step_hash, name, kind, {"error": memo_error}, ops)
                    resolved.append(step_hash)
                else:
                    retry = True
            elif step_hash in run.pending:
                # Already scheduled (race-mode discovery re-reports unfinished siblings): never
                # enqueue a second job for the same step.
                continue
            elif kind == "StepPlanned":
                new_job = self.new_job(run, "step", step_hash=step_hash)
                ops.append(self.job_insert(new_job))
                follow.append(new_job)
                new_pending.add(step_hash)
            elif kind == "Sleep":
                try:
                    wake = _sleep_until(op, opts)
                except ValueError as exc:
                    error = {"error": str(exc), "name": "InvalidSleep", "message": str(exc)}
                    ops.append(self.job_delete(job))
                    return self.finalize_ops(run, "Failed", ops=ops, error=error)
                new_job = self.new_job(
                    run, "sleep", step_hash=step_hash, run_at=wake, payload={"name": name}
                )
                ops.append(self.job_insert(new_job))
                follow.append(new_job)
                new_pending.add(step_hash)
            elif kind == "WaitForEvent":
                failure = self._wait_op(run, step_hash, name, op, opts, ops, follow)
                if failure is not None:
                    ops.append(self.job_delete(job))
                    return self.finalize_ops(run, "Failed", ops=ops, error=failure)
                new_pending.add(step_hash)
            elif kind == "InvokeFunction":
                emitted.extend(self._invoke_op(run, fn, step_hash, name, opts, ops, follow))
                new_pending.add(step_hash)
            elif kind == "AIGateway":
                new_job = self.new_job(
                    run, "ai", step_hash=step_hash, payload={"opts": dict(opts), "name": name}
                )
                ops.append(self.job_insert(new_job))
                follow.append(new_job)
                new_pending.add(step_hash)
            else:
                log.warning("ignoring unsupported opcode %s", kind)
        if retry:
            # Planned siblings were enqueued already; this job is retried for its failed step.
            run.pending |= new_pending
            self._state_op(run, ops)
            error = {"error": "step errored", "name": "Error", "message": "step errored"}
            self._retry_or_fail(run, job, fn, error, ops, follow, no_retry=False)
            return emitted
        run.pending |= new_pending
        for step_hash in resolved:
            run.pending.discard(step_hash)
        if job.kind == "step":
            run.pending.discard(job.step_hash)
        # The finished job's row becomes the next discovery job when there is one (one UPDATE
        # instead of a DELETE + INSERT on the hot path).
        if not self._maybe_discover(
            run, ops, follow, any_resolved=bool(resolved), race=race, reuse=job
        ):
            ops.append(self.job_delete(job))
        return emitted

    # ------------------------------------------------------------------ helpers
    def _memo_op(
        self: Engine, run: RunState, step_hash: str, step_id: str, op: str, memo: Any, ops: list[Op]
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

    def _state_op(self: Engine, run: RunState, ops: list[Op]) -> None:
        state = run.state_json()
        if state == run.saved_state:
            return  # sequential steps never change it: no write
        run.saved_state = state
        ops.append((update(t.runs).where(t.runs.c.run_id == run.run_id), {"state": state}))

    def _maybe_discover(
        self: Engine,
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
                discovery = self.new_job(run, "discovery")
                ops.append(self.job_insert(discovery))
                follow.append(discovery)
        self._state_op(run, ops)
        return reused


@functools.lru_cache(maxsize=4096)
def _call_url(base: str, step_id: str) -> str:
    """The function URL with stepId set (computed once per function and step)."""
    return str(httpx.URL(base).copy_set_param("stepId", step_id))


def _sleep_until(op: Mapping[str, Any], opts: Mapping[str, Any]) -> int:
    now = now_ms()
    duration = opts.get("duration") if opts else None
    target = str(duration or op.get("name") or "")
    wake = parse_time_or_duration_ms(target, base_ms=now)
    if wake - now > MAX_SLEEP_MS:
        raise ValueError("sleep exceeds 366 days")
    return wake


def _retry_after_ms(value: str, fallback: int) -> int:
    now = now_ms()
    value = value.strip()
    try:
        if value.isdigit() and len(value) <= 7:
            delay = int(value) * 1000
        else:
            try:
                delay = parse_iso_ms(value) - now
            except ValueError:
                from email.utils import parsedate_to_datetime

                delay = int(parsedate_to_datetime(value).timestamp() * 1000) - now
    except (ValueError, TypeError):
        return fallback
    return max(1000, min(delay, 86_400_000))
