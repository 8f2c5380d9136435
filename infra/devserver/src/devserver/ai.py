"""The AI gateway of `step.ai.infer`: the engine, not the SDK, calls the model provider and
stores its answer as the step's memo, retrying like a step
(infra/devserver/docs/executor.md#ai-inference)."""

from __future__ import annotations

from typing import Any

import httpx

from devserver.progress import RunProgress
from devserver.queue import Job, JobQueue
from devserver.registry import Registry
from devserver.runcache import RunCache
from devserver.store import Store
from devserver.util import now_ms


def provider_request(opts: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, str]]:
    """(url, headers, query params) for the provider, with its own way of passing the key."""
    headers = {"content-type": "application/json"}
    params: dict[str, str] = {}
    auth_key = opts.get("auth_key")
    if auth_key:
        fmt = opts.get("format")
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
    return str(opts.get("url", "")), headers, params


class AIGateway:
    def __init__(
        self,
        *,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        registry: Registry,
        progress: RunProgress,
        http: httpx.AsyncClient,
    ) -> None:
        self._store = store
        self._runs = runs
        self._queue = queue
        self._registry = registry
        self._progress = progress
        self._http = http

    async def call(self, job: Job) -> None:
        payload = job.payload or {}
        opts = payload.get("opts") or {}
        url, headers, params = provider_request(opts)
        started = now_ms()
        memo: Any = None
        failure: str | None = None
        body_text = ""
        try:
            response = await self._http.post(
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
        async with self._runs.lock(job.run_id):
            run = await self._runs.get(job.run_id)
            if run is None or run.terminal or job.removed:
                return
            fn = self._registry.all_functions.get(run.function_slug)
            max_attempts = fn.max_attempts if fn else 1
            changes = self._store.changes()
            if failure is not None and job.attempt + 1 < max_attempts:
                job.attempt += 1
                job.run_at = now_ms() + self._progress.backoff_ms(job.attempt - 1)
                changes.jobs.reschedule(job)
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
                name = str(payload.get("name", ""))
                changes.jobs.delete(job.job_id)
                self._progress.save_memo(run, job.step_hash, name, "AIGateway", memo, changes)
                self._progress.record_attempt(
                    changes,
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
                run.pending.discard(job.step_hash)
                self._progress.maybe_discover(run, changes, follow, any_resolved=True, race=False)
            await self._store.commit(changes)
        if job not in follow:
            self._queue.remove(job)
        for new in follow:
            self._queue.push(new)
