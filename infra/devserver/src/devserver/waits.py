"""Waiting parts of a run: sleeps, wait_for_event and invoke pauses (and their timeouts), the
AI gateway call of `step.ai.infer`, and run-level timeouts. The protocol:
infra/devserver/docs/executor.md#sleep, #wait-for-event, #invoke, #ai-inference and
#cancellation-and-timeouts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import delete, insert, select, update

from devserver import store as t
from devserver.queue import Job
from devserver.runstate import RunState
from devserver.store import Op
from devserver.util import new_ulid, now_ms, parse_time_or_duration_ms

if TYPE_CHECKING:
    from devserver.engine import Engine
    from devserver.registry import FunctionDef

log = logging.getLogger("devserver.waits")

MAX_SLEEP_MS = 366 * 86_400_000
INVOKE_TIMEOUT_ERROR = {
    "error": "InngestInvokeTimeoutError: Timed out waiting for invoked function to complete",
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}


class WaitsMixin:
    def _finish_timeout_job(self: Engine, fn: FunctionDef, run: RunState) -> None:
        timeouts = fn.config.get("timeouts") or {}
        finish = timeouts.get("finish") if isinstance(timeouts, Mapping) else None
        if not finish:
            return
        from devserver.util import parse_duration_ms

        try:
            at = (run.started_at or now_ms()) + parse_duration_ms(str(finish))
        except ValueError:
            return
        job = self.new_job(run, "run_timeout", run_at=at, payload={"which": "finish"})
        self.spawn(self._push_durable(job))

    async def _push_durable(self: Engine, job: Job) -> None:
        await self.store.write([self.job_insert(job)])
        self.queue.push(job)

    async def _run_timeout(self: Engine, job: Job) -> None:
        which = (job.payload or {}).get("which")
        run = await self.get_run(job.run_id)
        await self.store.write([self.job_delete(job)])
        self.queue.remove(job)
        if run is None or run.terminal:
            return
        if which == "start" and run.started_at is not None:
            return
        await self.cancel_run(run.run_id, reason=f"timeouts.{which} exceeded")

    async def _resolve_from_job(self: Engine, job: Job, memo: Any) -> None:
        """A sleep woke up (memo null)."""
        follow: list[Job] = []
        async with self.lock(job.run_id):
            run = await self.get_run(job.run_id)
            if run is None or run.terminal or job.removed:
                return
            ops: list[Op] = [self.job_delete(job)]
            name = str((job.payload or {}).get("name", ""))
            self._memo_op(run, job.step_hash, name, "Sleep", memo, ops)
            run.pending.discard(job.step_hash)
            self._maybe_discover(run, ops, follow, any_resolved=True, race=False)
            await self.store.write(ops)
        self.queue.remove(job)
        for new_job in follow:
            self.queue.push(new_job)

    def _wait_op(
        self: Engine,
        run: RunState,
        step_hash: str,
        name: str,
        op: Mapping[str, Any],
        opts: Mapping[str, Any],
        ops: list[Op],
        follow: list[Job],
    ) -> dict[str, Any] | None:
        event_name = str(opts.get("event") or op.get("name") or "")
        expression = opts.get("if")
        if expression:
            from devserver.expressions import compile_expression, interpolate

            try:
                expression = interpolate(str(expression), event=run.events[0])
                compile_expression(expression)
            except Exception as exc:
                return {
                    "error": f"InvalidExpression: {exc}",
                    "name": "InvalidExpression",
                    "message": f"wait_for_event expression is invalid: {exc}",
                }
        now = now_ms()
        timeout = opts.get("timeout")
        try:
            expires = parse_time_or_duration_ms(str(timeout), base_ms=now) if timeout else now
        except ValueError:
            expires = now
        if expires - now > MAX_SLEEP_MS:
            return {
                "error": "wait timeout too long",
                "name": "Error",
                "message": "wait_for_event timeout exceeds 366 days",
            }
        self._pause_ops(
            run, "wait", event_name, expression or None, step_hash, name, None, expires, ops, follow
        )
        return None

    def _pause_ops(
        self: Engine,
        run: RunState,
        kind: str,
        event_name: str,
        expression: str | None,
        step_hash: str,
        name: str,
        correlation: str | None,
        expires: int,
        ops: list[Op],
        follow: list[Job],
    ) -> None:
        pause_id = new_ulid()
        self.pause_names.add(event_name)
        timeout_job = self.new_job(
            run,
            "pause_timeout",
            step_hash=step_hash,
            run_at=expires,
            payload={"pause_id": pause_id, "kind": kind, "name": name},
        )
        ops.append(
            (
                insert(t.pauses),
                {
                    "pause_id": pause_id,
                    "run_id": run.run_id,
                    "kind": kind,
                    "event_name": event_name,
                    "expression": expression,
                    "step_hash": step_hash,
                    "step_name": name,
                    "correlation_id": correlation,
                    "expires_at": expires,
                    "timeout_job_id": timeout_job.job_id,
                    "created_at": now_ms(),
                },
            )
        )
        ops.append(self.job_insert(timeout_job))
        follow.append(timeout_job)

    def _invoke_op(
        self: Engine,
        run: RunState,
        fn: FunctionDef,
        step_hash: str,
        name: str,
        opts: Mapping[str, Any],
        ops: list[Op],
        follow: list[Job],
    ) -> list[dict[str, Any]]:
        now = now_ms()
        correlation = f"{run.run_id}.{step_hash}"
        timeout = opts.get("timeout")
        try:
            expires = (
                parse_time_or_duration_ms(str(timeout), base_ms=now)
                if timeout
                else now + MAX_SLEEP_MS
            )
        except ValueError:
            expires = now + MAX_SLEEP_MS
        self._pause_ops(
            run,
            "invoke",
            "inngest/function.finished",
            None,
            step_hash,
            name,
            correlation,
            expires,
            ops,
            follow,
        )
        raw_payload = opts.get("payload")
        payload: Mapping[str, Any] = raw_payload if isinstance(raw_payload, Mapping) else {}
        data = dict(payload.get("data") or {})
        data["_inngest"] = {
            "fn_id": str(opts.get("function_id", "")),
            "correlation_id": correlation,
            "expire": expires,
            "gid": "",
            "name": name,
            "source_app_id": fn.app_name,
            "source_fn_id": fn.uuid,
            "source_fn_v": 1,
        }
        row, normalized = self.internal_event_row(
            {"name": "inngest/function.invoked", "data": data}
        )
        ops.append((insert(t.events), row))
        return [normalized]

    async def resume_pause(self: Engine, pause_id: str, run_id: str, memo: Any) -> bool:
        """Consume a pause exactly once: store the memo and continue the run."""
        follow: list[Job] = []
        async with self.lock(run_id):
            row = await self.store.fetch_one(
                select(t.pauses).where(t.pauses.c.pause_id == pause_id)
            )
            run = await self.get_run(run_id)
            if row is None or run is None or run.terminal:
                return False
            ops: list[Op] = [(delete(t.pauses).where(t.pauses.c.pause_id == pause_id), None)]
            if row.timeout_job_id:
                ops.append((delete(t.jobs).where(t.jobs.c.job_id == row.timeout_job_id), None))
                for job in self.queue.jobs_of_run(run_id):
                    if job.job_id == row.timeout_job_id:
                        self.queue.remove(job)
            op_name = {"wait": "WaitForEvent", "invoke": "InvokeFunction"}.get(row.kind, row.kind)
            self._memo_op(run, row.step_hash, row.step_name, op_name, memo, ops)
            ops.append(
                self._attempt_op(
                    run,
                    Job("", run_id, run.function_slug, row.kind),
                    step_hash=row.step_hash,
                    step_name=row.step_name,
                    op=op_name,
                    started=row.created_at,
                    ended=now_ms(),
                    status="Completed",
                    output=memo,
                )
            )
            run.pending.discard(row.step_hash)
            self._maybe_discover(run, ops, follow, any_resolved=True, race=False)
            await self.store.write(ops)
        for job in follow:
            self.queue.push(job)
        return True

    async def _pause_timeout(self: Engine, job: Job) -> None:
        payload = job.payload or {}
        memo = {"error": INVOKE_TIMEOUT_ERROR} if payload.get("kind") == "invoke" else None
        resumed = await self.resume_pause(str(payload.get("pause_id")), job.run_id, memo)
        if not resumed:
            await self.store.write([self.job_delete(job)])
        self.queue.remove(job)

    async def _ai_call(self: Engine, job: Job) -> None:
        payload = job.payload or {}
        opts = payload.get("opts") or {}
        url = str(opts.get("url", ""))
        headers = {"content-type": "application/json"}
        auth_key = opts.get("auth_key")
        fmt = opts.get("format")
        params: dict[str, str] = {}
        if auth_key:
            if fmt == "anthropic":
                headers["x-api-key"] = str(auth_key)
            elif fmt == "gemini":
                params["key"] = str(auth_key)
            elif fmt == "bedrock":
                headers["authorization"] = str(auth_key)
            else:
                headers["authorization"] = f"Bearer {auth_key}"
        for key, value in (opts.get("headers") or {}).items():
            headers[str(key).lower()] = str(value)
        started = now_ms()
        memo: Any = None
        failure: str | None = None
        body_text = ""
        try:
            response = await self.http.post(
                url, json=opts.get("body"), headers=headers, params=params
            )
            body_text = response.text
            if response.status_code > 299:
                failure = f"Error making AI request: status {response.status_code}"
            else:
                memo = {"data": response.json()}
        except (httpx.HTTPError, ValueError) as exc:
            failure = f"Error making AI request: {exc!r}"
        ended = now_ms()
        follow: list[Job] = []
        async with self.lock(job.run_id):
            run = await self.get_run(job.run_id)
            if run is None or run.terminal or job.removed:
                return
            fn = self.registry.all_functions.get(run.function_slug)
            max_attempts = fn.max_attempts if fn else 1
            ops: list[Op] = []
            name = str(payload.get("name", ""))
            if failure is not None and job.attempt + 1 < max_attempts:
                job.attempt += 1
                job.run_at = now_ms() + self._backoff_ms(job.attempt - 1)
                ops.append(
                    (
                        update(t.jobs).where(t.jobs.c.job_id == job.job_id),
                        {"attempt": job.attempt, "run_at": job.run_at},
                    )
                )
                follow.append(job)
            else:
                if failure is not None:
                    memo = {
                        "error": {
                            "name": "AIGatewayError",
                            "message": failure,
                            "stack": body_text,
                            "data": body_text,
                        }
                    }
                ops.append(self.job_delete(job))
                self._memo_op(run, job.step_hash, name, "AIGateway", memo, ops)
                ops.append(
                    self._attempt_op(
                        run,
                        job,
                        step_hash=job.step_hash,
                        step_name=name,
                        op="AIGateway",
                        started=started,
                        ended=ended,
                        status="Failed" if failure else "Completed",
                        output=memo,
                    )
                )
                run.pending.discard(job.step_hash)
                self._maybe_discover(run, ops, follow, any_resolved=True, race=False)
            await self.store.write(ops)
        if job not in follow:
            self.queue.remove(job)
        for new_job in follow:
            self.queue.push(new_job)
