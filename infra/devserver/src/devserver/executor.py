"""Executor: calls the SDK for each job and turns its answer (200 / 206 ops / errors) into
memos, new jobs, pauses and run outcomes (infra/devserver/docs/calls.md,
infra/devserver/docs/executor.md)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from devserver.events import EventFeed
from devserver.http1 import Http1Client, HttpError
from devserver.lifecycle import RunLifecycle
from devserver.progress import RunProgress
from devserver.queue import Job, JobQueue, new_job
from devserver.registry import FunctionDef, Registry
from devserver.runcache import RunCache
from devserver.runstate import RunState
from devserver.signing import sign_body
from devserver.store import Changes, Store
from devserver.util import (
    MAX_STEP_OUTPUT_BYTES,
    dumps,
    new_ulid,
    now_ms,
    parse_iso_ms,
    parse_time_or_duration_ms,
)
from devserver.waits import MAX_SLEEP_MS, Waits

log = logging.getLogger("devserver.executor")

MAX_STEPS = 1000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
SDK_REQUEST_TIMEOUT_S = 7200.0  # as Inngest: 2 h per SDK request


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


class Executor:
    """Calls the SDK for start / discovery / step jobs and applies its answer."""

    def __init__(
        self,
        *,
        signing_key: str | None,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        registry: Registry,
        progress: RunProgress,
        waits: Waits,
        lifecycle: RunLifecycle,
        feed: EventFeed,
        sdk_http: Http1Client,
    ) -> None:
        self._signing_key = signing_key
        self._store = store
        self._runs = runs
        self._queue = queue
        self._registry = registry
        self._progress = progress
        self._waits = waits
        self._lifecycle = lifecycle
        self._feed = feed
        self._sdk_http = sdk_http

    # ------------------------------------------------------------------ SDK call
    def _request(
        self, run: RunState, job: Job, fn: FunctionDef
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
        if self._signing_key:
            content, signature = sign_body(body, self._signing_key)
            headers["x-inngest-signature"] = signature
        return _call_url(fn.url, step_id), content, headers

    async def _post(self, url: str, content: bytes, headers: dict[str, str]) -> CallOutcome:
        try:
            response = await self._sdk_http.request(
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

    async def call(self, job: Job) -> None:
        """Run a start, discovery or step job: one SDK request, its outcome written."""
        run = await self._runs.get(job.run_id)
        if run is None or run.terminal:
            return
        fn = self._registry.all_functions.get(run.function_slug)
        if fn is None:
            await self._fail_unregistered(run, job)
            return
        if run.started_at is None:
            await self._mark_started(run, fn)
        url, content, headers = self._request(run, job, fn)
        started = now_ms()
        outcome = await self._post(url, content, headers)
        ended = now_ms()
        emitted: list[dict[str, Any]] = []
        follow: list[Job] = []
        async with self._runs.lock(run.run_id):
            current = await self._runs.get(run.run_id)
            if current is None or current.terminal or job.removed:
                return  # cancelled while in flight: results are discarded
            run = current
            changes = self._store.changes()
            emitted = self._apply_outcome(run, job, fn, outcome, started, ended, changes, follow)
            await self._store.commit(changes)
        if run.terminal:
            await self._lifecycle.after_finalize(run, emitted)
            return
        if job not in follow:
            self._queue.remove(job)
        for new in follow:
            self._queue.push(new)
        for event in emitted:
            self._feed.put(event)

    async def _fail_unregistered(self, run: RunState, job: Job) -> None:
        async with self._runs.lock(run.run_id):
            changes = self._store.changes()
            changes.jobs.delete(job.job_id)
            error = {
                "error": "function not found",
                "name": "Error",
                "message": f"function {run.function_slug} is not registered",
            }
            emitted = self._lifecycle.finalize(run, "Failed", changes, error=error)
            await self._store.commit(changes)
        await self._lifecycle.after_finalize(run, emitted)

    async def _mark_started(self, run: RunState, fn: FunctionDef) -> None:
        """First SDK call of the run: Running, and its `timeouts.finish` clock starts."""
        async with self._runs.lock(run.run_id):
            if run.started_at is not None:
                return
            run.started_at = now_ms()
            run.status = "Running"
            changes = self._store.changes()
            changes.runs.mark_started(run)
            timeout = self._waits.finish_timeout_job(fn, run)
            if timeout is not None:
                changes.jobs.add(timeout)
            await self._store.commit(changes)
        if timeout is not None:
            self._queue.push(timeout)

    def _retry_or_fail(
        self,
        run: RunState,
        job: Job,
        fn: FunctionDef,
        error: dict[str, Any],
        changes: Changes,
        follow: list[Job],
        *,
        no_retry: bool,
        retry_after: str | None = None,
    ) -> list[dict[str, Any]]:
        if no_retry or job.attempt + 1 >= fn.max_attempts:
            changes.jobs.delete(job.job_id)
            return self._lifecycle.finalize(run, "Failed", changes, error=error)
        delay = self._progress.backoff_ms(job.attempt)
        if retry_after:
            delay = _retry_after_ms(retry_after, delay)
        job.attempt += 1
        job.run_at = now_ms() + delay
        changes.jobs.reschedule(job)
        follow.append(job)
        return []

    def _apply_outcome(
        self,
        run: RunState,
        job: Job,
        fn: FunctionDef,
        outcome: CallOutcome,
        started: int,
        ended: int,
        changes: Changes,
        follow: list[Job],
    ) -> list[dict[str, Any]]:
        if outcome.transport_error is not None or outcome.status not in (200, 206):
            message = outcome.transport_error or f"invalid status code: {outcome.status}"
            error = _error_object(outcome.body, message)
            self._progress.record_attempt(
                changes,
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
            no_retry = outcome.no_retry and outcome.transport_error is None
            return self._retry_or_fail(
                run,
                job,
                fn,
                error,
                changes,
                follow,
                no_retry=no_retry,
                retry_after=outcome.headers.get("retry-after"),
            )
        if outcome.status == 200:
            changes.jobs.delete(job.job_id)
            self._progress.record_attempt(
                changes,
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
            return self._lifecycle.finalize(run, "Completed", changes, output=outcome.body)
        op_list = outcome.body if isinstance(outcome.body, list) else []
        valid = [o for o in op_list if isinstance(o, Mapping) and isinstance(o.get("id"), str)]
        if not valid:
            error = {
                "error": "invalid response",
                "name": "Error",
                "message": "206 response without a list of opcodes",
            }
            return self._retry_or_fail(run, job, fn, error, changes, follow, no_retry=False)
        return self._apply_ops(run, job, fn, valid, outcome, started, ended, changes, follow)

    def _apply_ops(
        self,
        run: RunState,
        job: Job,
        fn: FunctionDef,
        op_list: list[Mapping[str, Any]],
        outcome: CallOutcome,
        started: int,
        ended: int,
        changes: Changes,
        follow: list[Job],
    ) -> list[dict[str, Any]]:
        emitted: list[dict[str, Any]] = []
        if len(run.memos) + len(op_list) > MAX_STEPS:
            message = f"The function run exceeded the step limit of {MAX_STEPS} steps."
            changes.jobs.delete(job.job_id)
            error = {"error": message, "name": "StepLimitError", "message": message}
            return self._lifecycle.finalize(run, "Failed", changes, error=error)
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
                    changes.jobs.delete(job.job_id)
                    return self._lifecycle.finalize(run, "Failed", changes, error=error)
                self._progress.save_memo(run, step_hash, name, kind, memo, changes)
                self._progress.record_attempt(
                    changes,
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
                resolved.append(step_hash)
            elif kind in ("StepError", "StepFailed"):
                op_error = op.get("error")
                raw_error: Mapping[str, Any] = op_error if isinstance(op_error, Mapping) else {}
                error = _error_object(raw_error, "step failed")
                final = (
                    kind == "StepFailed" or outcome.no_retry or job.attempt + 1 >= fn.max_attempts
                )
                self._progress.record_attempt(
                    changes,
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
                if final:
                    memo_error = dict(raw_error) or dict(error)
                    memo_error.setdefault("name", error["name"])
                    memo_error.setdefault("message", error["message"])
                    self._progress.save_memo(
                        run, step_hash, name, kind, {"error": memo_error}, changes
                    )
                    resolved.append(step_hash)
                else:
                    retry = True
            elif step_hash in run.pending:
                # Already scheduled (race-mode discovery re-reports unfinished siblings): never
                # enqueue a second job for the same step.
                continue
            elif kind == "StepPlanned":
                new = new_job(run, "step", step_hash=step_hash)
                changes.jobs.add(new)
                follow.append(new)
                new_pending.add(step_hash)
            elif kind == "Sleep":
                try:
                    wake = _sleep_until(op, opts)
                except ValueError as exc:
                    error = {"error": str(exc), "name": "InvalidSleep", "message": str(exc)}
                    changes.jobs.delete(job.job_id)
                    return self._lifecycle.finalize(run, "Failed", changes, error=error)
                new = new_job(
                    run, "sleep", step_hash=step_hash, run_at=wake, payload={"name": name}
                )
                changes.jobs.add(new)
                follow.append(new)
                new_pending.add(step_hash)
            elif kind == "WaitForEvent":
                failure = self._waits.wait_op(run, step_hash, name, op, opts, changes, follow)
                if failure is not None:
                    changes.jobs.delete(job.job_id)
                    return self._lifecycle.finalize(run, "Failed", changes, error=failure)
                new_pending.add(step_hash)
            elif kind == "InvokeFunction":
                emitted.extend(
                    self._waits.invoke_op(run, fn, step_hash, name, opts, changes, follow)
                )
                new_pending.add(step_hash)
            elif kind == "AIGateway":
                new = new_job(
                    run, "ai", step_hash=step_hash, payload={"opts": dict(opts), "name": name}
                )
                changes.jobs.add(new)
                follow.append(new)
                new_pending.add(step_hash)
            else:
                log.warning("ignoring unsupported opcode %s", kind)
        if retry:
            # Planned siblings were enqueued already; this job is retried for its failed step.
            run.pending |= new_pending
            self._progress.save_state(run, changes)
            error = {"error": "step errored", "name": "Error", "message": "step errored"}
            self._retry_or_fail(run, job, fn, error, changes, follow, no_retry=False)
            return emitted
        run.pending |= new_pending
        for step_hash in resolved:
            run.pending.discard(step_hash)
        if job.kind == "step":
            run.pending.discard(job.step_hash)
        # The finished job's row becomes the next discovery job when there is one (one UPDATE
        # instead of a DELETE + INSERT on the hot path).
        if not self._progress.maybe_discover(
            run, changes, follow, any_resolved=bool(resolved), race=race, reuse=job
        ):
            changes.jobs.delete(job.job_id)
        return emitted


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
                delay = int(parsedate_to_datetime(value).timestamp() * 1000) - now
    except (ValueError, TypeError):
        return fallback
    return max(1000, min(delay, 86_400_000))
