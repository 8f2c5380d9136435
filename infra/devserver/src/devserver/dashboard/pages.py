"""Read-only dashboard pages (server-rendered Jinja2; a little JS refreshes live parts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine_client import AsyncEngineClient, EngineError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from devserver.dashboard.catalog import templates_for
from devserver.dashboard.engine_extras import pending_lookup_for, sync_errors, with_pending
from devserver.dashboard.functions_view import load_functions
from devserver.dashboard.settings import DashboardSettings
from devserver.dashboard.steps_view import step_rows
from devserver.dashboard.views import (
    RunRow,
    error_parts,
    event_row,
    fmt_time,
    pick,
    pretty,
    run_row,
    to_datetime,
)

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals.update(fmt_time=fmt_time, error_parts=error_parts)

WINDOWS: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "all": None,
}
FRESH_EVENT = timedelta(seconds=3)
STATUSES = ("Queued", "Running", "Completed", "Failed", "Cancelled", "Skipped")

router = APIRouter(include_in_schema=False)


def client_of(request: Request) -> AsyncEngineClient:
    client: AsyncEngineClient = request.app.state.dashboard_client
    return client


def settings_of(request: Request) -> DashboardSettings:
    settings: DashboardSettings = request.app.state.dashboard_settings
    return settings


def render(request: Request, template: str, **context: Any) -> Response:
    context.setdefault("msg", request.query_params.get("msg"))
    context.setdefault("err", request.query_params.get("err"))
    context["refresh_ms"] = settings_of(request).refresh_ms
    status_code = int(context.pop("status", 200))
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def window_start(window: str) -> str | None:
    span = WINDOWS.get(window)
    if span is None:
        return None
    return (datetime.now(tz=UTC) - span).isoformat().replace("+00:00", "Z")


def _in_window(moment: Any, cutoff: datetime) -> bool:
    parsed = to_datetime(moment)
    return parsed is None or parsed >= cutoff


async def function_names(client: AsyncEngineClient) -> dict[str, str]:
    """Function UUID or slug -> slug (the /v1 run shape names functions by UUID)."""
    names: dict[str, str] = {}
    try:
        for app in await client.list_app_records():
            app_name = str(pick(app, "id", "name", default=""))
            for fn in await client.list_v1_functions(app_name):  # id = slug, internal_id = UUID
                slug = str(pick(fn, "id", "name", default=""))
                for key in ("id", "internal_id"):
                    if fn.get(key):
                        names[str(fn[key])] = slug
    except EngineError:
        return names
    return names


@router.get("/", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/runs", status_code=303)


async def _fetch_runs(
    client: AsyncEngineClient, statuses: list[str], app: str, function: str, since: str | None
) -> list[RunRow]:
    """Newest runs; filtered by the engine where it can (app + the SDK's function id), else
    here. `function` is the app-prefixed slug the pages use."""
    function_id = None
    if function and app and function.startswith(f"{app}-"):
        function_id = function[len(app) + 1 :]
    answer = await client.runs_page(
        status=statuses, app_id=app or None, function_id=function_id, since=since, limit=500
    )
    return [run_row(run.raw) for run in answer.runs]


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(
    request: Request,
    app: str = "",
    function: str = "",
    status: str = "",
    window: str = "24h",
    partial: bool = False,
) -> Response:
    client = client_of(request)
    statuses = [s for s in status.split(",") if s]
    error = None
    rows = []
    try:
        rows = await _fetch_runs(client, statuses, app, function, window_start(window))
    except EngineError as exc:
        error = exc.reason
    if function:
        rows = [r for r in rows if function in (r.function, r.function_id)]
    since = window_start(window)
    cutoff = to_datetime(since) if since else None
    if cutoff is not None:
        rows = [r for r in rows if _in_window(r.started_at or r.queued_at, cutoff)]
    if app:
        rows = [r for r in rows if r.app in ("", app)]
    functions = sorted({r.function_id or r.function for r in rows})
    apps_list = sorted({r.app for r in rows if r.app})
    template = "_runs_table.html" if partial else "runs.html"
    return render(
        request,
        template,
        page="runs",
        runs=rows,
        filters={"app": app, "function": function, "status": status, "window": window},
        statuses=STATUSES,
        windows=list(WINDOWS),
        functions=functions,
        apps=apps_list,
        load_error=error,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_detail(request: Request, run_id: str, partial: bool = False) -> Response:
    client = client_of(request)
    settings = settings_of(request)
    try:
        found, run_trace, jobs = await asyncio.gather(
            client.get_run(run_id),
            client.run_trace(run_id, include_output=True),
            client.extras.run_jobs(run_id),
        )
    except EngineError as exc:
        if exc.status in (404, 500) and "run" in exc.reason.lower():
            return render(request, "not_found.html", page="runs", what=f"run {run_id}", status=404)
        raise
    run = run_row(found.raw)
    try:  # v2 has no link back to the original run of a rerun; v1 does
        run.original_run_id = (await client.get_run_v1(run_id)).original_run_id
    except EngineError:
        run.original_run_id = None
    trace: dict[str, Any] = dict(run_trace.raw)
    if not run.final:
        trace = await with_pending(trace, run_id, pending_lookup_for(request.app.state))
    steps = step_rows(trace, jobs=jobs, run_final=run.final)
    event: dict[str, Any] | None = None
    if run.event_id:
        try:
            event = event_row(await client.get_event(run.event_id))
        except EngineError:
            event = None
    waiting = [] if run.final else [s for s in steps if s.status in ("Sleeping", "Waiting")]
    template = "_run_body.html" if partial else "run_detail.html"
    return render(
        request,
        template,
        page="runs",
        run=run,
        steps=steps,
        waiting=waiting,
        event=event,
        pretty=lambda v: pretty(v, settings.redact_fields),
    )


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request, name: str = "", partial: bool = False) -> Response:
    client = client_of(request)
    matched: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    error = None
    try:
        events = [event_row(e) for e in await client.list_events(limit=50, name=name or None)]
        runs_lists = await asyncio.gather(*(client.event_runs(e["internal_id"]) for e in events))
        names = await function_names(client)
        # An event received a moment ago may not have been matched yet: keep it in the stream.
        just_now = datetime.now(tz=UTC) - FRESH_EVENT
        for event, runs in zip(events, runs_lists, strict=True):
            event["runs"] = [run_row(r.raw) for r in runs]
            for run in event["runs"]:
                run.function = names.get(run.function_id, run.function)
            event["pending"] = not runs and (event["received"] or just_now) > just_now
            if event["runs"] or event["pending"]:
                matched.append(event)
            elif not event["name"].startswith("inngest/"):  # engine events are not "unmatched"
                unmatched.append(event)
    except EngineError as exc:
        error = exc.reason
    template = "_events_body.html" if partial else "events.html"
    return render(
        request,
        template,
        page="events",
        matched=matched,
        unmatched=unmatched,
        name=name,
        load_error=error,
        pretty=lambda v: pretty(v, settings_of(request).redact_fields),
    )


@router.get("/functions", response_class=HTMLResponse)
async def functions_page(request: Request, partial: bool = False) -> Response:
    error = None
    by_app = {}
    try:
        by_app = await load_functions(client_of(request))
    except EngineError as exc:
        error = exc.reason
    template = "_functions_body.html" if partial else "functions.html"
    return render(request, template, page="functions", by_app=by_app, load_error=error)


def _app_row(app: dict[str, Any]) -> dict[str, Any]:
    """A v2 `App` as a row of the apps page."""
    latest = app.get("latestSync")
    sync: dict[str, Any] = latest if isinstance(latest, dict) else {}
    sdk = (sync.get("sdkLanguage", ""), sync.get("sdkVersion", ""))
    return {
        "name": pick(app, "name", "id", default=""),
        "id": pick(app, "id", default=""),
        "url": sync.get("url", ""),
        "sdk": " ".join(str(x) for x in sdk if x),
        "framework": sync.get("framework", ""),
        "functions": int(app.get("functionCount") or 0),
        "error": None,  # v2 has no sync error: engine_extras.sync_errors adds it
        "synced_at": fmt_time(app.get("createdAt")),
    }


def _unsynced_row(url: str, error: str) -> dict[str, Any]:
    """An SDK URL whose sync failed (no app behind it yet)."""
    return {
        "name": url,
        "id": "",
        "url": url,
        "sdk": "",
        "framework": "",
        "functions": 0,
        "error": error,
        "synced_at": "",
    }


@router.get("/apps", response_class=HTMLResponse)
async def apps_page(request: Request) -> Response:
    error = None
    apps: list[dict[str, Any]] = []
    try:
        apps = [_app_row(app) for app in await client_of(request).list_app_records()]
    except EngineError as exc:
        error = exc.reason
    app_errors, url_errors = sync_errors(request.app.state)
    for app in apps:
        app["error"] = app["error"] or app_errors.get(str(app["name"]))
    synced_urls = {str(a["url"]) for a in apps}
    apps.extend(
        _unsynced_row(url, url_error)
        for url, url_error in sorted(url_errors.items())
        if url not in synced_urls
    )
    return render(request, "apps.html", page="apps", apps=apps, load_error=error)


@router.get("/send", response_class=HTMLResponse)
async def send_page(request: Request, template: str = "") -> Response:
    client = client_of(request)
    try:
        recent = [str(e.get("name", "")) for e in await client.list_events(limit=100)]
    except EngineError:
        recent = []
    templates = templates_for(recent)
    return render(request, "send.html", page="send", templates=templates, chosen=template)


@router.get("/invoke", response_class=HTMLResponse)
async def invoke_page(request: Request, function: str = "") -> Response:
    error = None
    by_app = {}
    try:
        by_app = await load_functions(client_of(request))
    except EngineError as exc:
        error = exc.reason
    return render(
        request, "invoke.html", page="invoke", by_app=by_app, chosen=function, load_error=error
    )


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(request: Request, channel: str = "") -> Response:
    reader = request.app.state.dashboard_notifications
    rows: list[dict[str, Any]] = []
    error = None
    if reader is not None:
        try:
            rows = await reader.latest(limit=200, channel=channel or None)
        except Exception as exc:  # a missing table or unreachable DB is shown on the page
            error = f"{type(exc).__name__}: {exc}"
    return render(
        request,
        "notifications.html",
        page="notifications",
        configured=reader is not None,
        rows=rows,
        channel=channel,
        load_error=error,
    )
