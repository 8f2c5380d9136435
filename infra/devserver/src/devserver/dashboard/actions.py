"""Dashboard actions (HTML form posts, answered with a redirect carrying a message).

Each action is one REST API call on the engine; a refused action (bad JSON, unknown run, engine
4xx) comes back to the page as a readable error, never a stack trace.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from engine_client import EngineError
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from devserver.dashboard.pages import client_of, window_start
from devserver.dashboard.views import error_parts, run_row

router = APIRouter(include_in_schema=False)


def same_origin(request: Request) -> bool:
    """Browsers send Origin on form posts; one naming another host is a cross-site request."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host", "")


async def form_of(request: Request) -> dict[str, str]:
    if not same_origin(request):
        raise HTTPException(403, "cross-site form post refused")
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def back(path: str, *, msg: str | None = None, err: str | None = None) -> Response:
    params = {k: v for k, v in (("msg", msg), ("err", err)) if v}
    sep = "&" if "?" in path else "?"
    url = f"{path}{sep}{urlencode(params)}" if params else path
    return RedirectResponse(url, status_code=303)


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


@router.post("/send")
async def send_event(request: Request) -> Response:
    form = await form_of(request)
    try:
        event = parse_json_object(form.get("event", ""), "the event")
        if not str(event.get("name", "")).strip():
            raise ValueError('the event needs a non-empty "name"')
        event.setdefault("data", {})
        ids = await client_of(request).send_events([event])
    except ValueError as exc:
        return back("/send", err=str(exc))
    except EngineError as exc:
        return back("/send", err=f"the engine refused the event: {exc.reason}")
    return back("/events", msg=f"sent {event['name']} ({', '.join(ids)})")


@router.post("/invoke")
async def invoke_function(request: Request) -> Response:
    form = await form_of(request)
    target = form.get("function", "")
    app_id, _, function_id = target.partition("/")
    if not app_id or not function_id:
        return back("/invoke", err="choose a function to invoke")
    try:
        data = parse_json_object(form.get("data", ""), "the data")
        invocation = await client_of(request).invoke(
            app_id, function_id, data, idempotency_key=form.get("idempotency_key") or None
        )
    except ValueError as exc:
        return back(f"/invoke?function={target}", err=str(exc))
    except EngineError as exc:
        return back(f"/invoke?function={target}", err=f"invoke refused ({target}): {exc.reason}")
    if invocation.reused:  # the idempotency key was used before: the engine names that run
        return back(
            f"/runs/{invocation.run_id}", msg=f"{function_id} was already invoked with that key"
        )
    return back(f"/runs/{invocation.run_id}", msg=f"invoked {function_id}")


@router.post("/runs/{run_id}/cancel")
async def cancel_run(request: Request, run_id: str) -> Response:
    await form_of(request)  # same-origin check
    try:
        await client_of(request).cancel_run(run_id)
    except EngineError as exc:
        return back(f"/runs/{run_id}", err=f"cancel refused: {exc.reason}")
    return back(f"/runs/{run_id}", msg="cancellation requested")


@router.post("/runs/{run_id}/rerun")
async def rerun(request: Request, run_id: str) -> Response:
    form = await form_of(request)
    step_id = form.get("step_id", "").strip()
    try:
        new_id = await client_of(request).rerun(run_id, from_step=step_id or None)
    except EngineError as exc:
        return back(f"/runs/{run_id}", err=f"rerun refused: {exc.reason}")
    what = f"rerun from step {step_id}" if step_id else "rerun from the top"
    return back(f"/runs/{new_id}", msg=f"{what} of {run_id}")


def _rfc3339(value: str) -> str:
    """A datetime-local form value (or RFC 3339) -> RFC 3339 UTC."""
    text = value.strip()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@router.post("/runs/bulk-cancel")
async def bulk_cancel(request: Request) -> Response:
    form = await form_of(request)
    target = form.get("function", "")
    app_id, _, function_id = target.partition("/")
    if not app_id or not function_id:
        return back("/runs", err="bulk cancel needs a function")
    try:
        before = form.get("started_before", "").strip()
        after = form.get("started_after", "").strip()
        started_before = _rfc3339(before) if before else _rfc3339(datetime.now(tz=UTC).isoformat())
        started_after = _rfc3339(after) if after else None
    except ValueError as exc:
        return back("/runs", err=f"bad time: {exc}")
    try:
        result = await client_of(request).extras.bulk_cancel(
            app_id=app_id,
            function_id=function_id,
            started_before=started_before,
            started_after=started_after,
            expression=form.get("if", "").strip() or None,
        )
    except EngineError as exc:
        return back("/runs", err=f"bulk cancel refused: {exc.reason}")
    detail = ""
    if isinstance(result, dict):
        count = result.get("cancelled_count", result.get("cancelled"))
        detail = f" ({count} runs)" if count is not None else ""
    return back("/runs", msg=f"bulk cancel of {function_id} accepted{detail}")


@router.post("/runs/bulk-rerun")
async def bulk_rerun(request: Request) -> Response:
    """Rerun (from the top) every Failed run of a function in a time window whose error matches."""
    form = await form_of(request)
    function = form.get("function", "").strip()
    window = form.get("window", "24h")
    pattern = form.get("error_pattern", "").strip()
    try:
        matcher = re.compile(pattern, re.IGNORECASE) if pattern else None
    except re.error as exc:
        return back("/runs", err=f"bad error pattern: {exc}")
    client = client_of(request)
    try:
        answer = await client.runs_page(
            status=["Failed"], since=window_start(window), limit=500, include_output=True
        )
    except EngineError as exc:
        return back("/runs", err=f"cannot list failed runs: {exc.reason}")
    rerun_count = 0
    failures: list[str] = []
    for found in answer.runs:
        run = run_row(found.raw)
        if run.status != "Failed":
            continue
        if function and function not in (run.function_id, run.function):
            continue
        if matcher is not None:
            name, message, _ = error_parts(run.error if run.error is not None else run.output)
            if not matcher.search(f"{name}: {message}"):
                continue
        try:
            await client.rerun(run.run_id)
            rerun_count += 1
        except EngineError as exc:
            failures.append(f"{run.run_id}: {exc.reason}")
    if failures:
        return back("/runs", err=f"reran {rerun_count}; refused: " + "; ".join(failures[:5]))
    return back("/runs", msg=f"reran {rerun_count} failed run(s)")
