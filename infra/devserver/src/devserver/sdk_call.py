"""The SDK call of a job: the request Inngest sends and its answer, normalized
(infra/devserver/docs/calls.md#request-body, #response-status-codes, #streaming-responses)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import httpx

from devserver.http1 import Http1Client, HttpError
from devserver.queue import Job
from devserver.registry import FunctionDef
from devserver.runstate import RunState
from devserver.signing import sign_body
from devserver.util import dumps, new_ulid

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


def build_request(
    run: RunState, job: Job, fn: FunctionDef, signing_key: str | None
) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of the SDK call for this job (signed when there is a key)."""
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
    if signing_key:
        content, signature = sign_body(body, signing_key)
        headers["x-inngest-signature"] = signature
    return _call_url(fn.url, step_id), content, headers


async def post(
    client: Http1Client, url: str, content: bytes, headers: dict[str, str]
) -> CallOutcome:
    """The SDK's answer, normalized (streamed 201 envelopes unwrapped)."""
    try:
        response = await client.request(
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


@functools.lru_cache(maxsize=4096)
def _call_url(base: str, step_id: str) -> str:
    """The function URL with stepId set (computed once per function and step)."""
    return str(httpx.URL(base).copy_set_param("stepId", step_id))
