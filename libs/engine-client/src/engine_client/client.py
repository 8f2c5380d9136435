"""The engine's public REST API, in the real Inngest server's dialect: the async client.

- Event API: `POST /e/{event_key}`
- `/v2`: runs (`GET /v2/runs`, `/v2/runs/{id}`, `/v2/runs/{id}/trace`, `/v2/events/{id}/runs`),
  `POST /v2/runs/{id}/cancel`, `POST /v2/runs/{id}/rerun`, apps and functions
  (`GET /v2/apps`, `/v2/apps/{app}/functions`), `POST /v2/apps/{app}/functions/{fn}/invoke`
- `/v1`: `GET /v1/events` (the only way to find an event by the id its producer gave it), and the
  v1 run routes as a fallback for servers without the v2 ones.

Not used by the portable calls, because the real server never honours them: `DELETE
/v1/runs/{id}` (always 404) and `/v1/cancellations` (500). A bulk cancel is a v2 run listing plus
one v2 cancel per run. The devserver's extras (run jobs, flow-control state, v1 bulk cancel) are
apart, in `client.extras` (extras.py).

Typed answers keep the engine's JSON (`raw`), for callers that pass it on unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from .errors import EngineError
from .extras import DevserverExtras
from .models import FunctionRef, Invocation, RunsPage, RunSummary, status_filter
from .times import rfc3339
from .traces import RunTrace
from .wire import IN_PROCESS_URL, EngineHttp

RUNS_PAGE_MAX = 100  # `GET /v2/runs`: "Limit cannot exceed 100"
EVENT_RUNS_PAGE_MAX = 40  # `GET /v2/events/{id}/runs`: "Limit cannot exceed 40"
APPS_PAGE_MAX = 100
V1_EVENTS_PAGE = 50  # `GET /v1/events` answers at most 51 events a page (both servers)
ALL = 10_000  # "every item" for listings that are small (apps, functions)


def _moment(value: datetime | str) -> str:
    """A datetime as the API wants it; text (already RFC 3339) as given."""
    return rfc3339(value) if isinstance(value, datetime) else value


def _ids(value: str | Sequence[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or () if v]


class AsyncEngineClient(EngineHttp):
    """The engine's REST API (async): events, runs, apps and functions.

    `extras` holds the devserver's own routes (not portable to the real server).
    """

    @classmethod
    def in_process(
        cls, app: Any, *, signing_key: str | None = None, event_key: str | None = None
    ) -> AsyncEngineClient:
        """A client for an ASGI app in this process (the devserver's own app): no port, no hop."""
        return cls(
            IN_PROCESS_URL,
            event_key=event_key,
            signing_key=signing_key,
            transport=httpx.ASGITransport(app=app),
        )

    async def __aenter__(self) -> AsyncEngineClient:
        return self

    @property
    def extras(self) -> DevserverExtras:
        """The devserver's extra routes, through this client's connection and credentials."""
        return DevserverExtras(self)

    # -- events ------------------------------------------------------------------------------

    async def send_events(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """POST /e/{key}; returns the internal ids the engine assigned, in order."""
        response = await self._request("POST", f"/e/{self.event_key}", json=list(events))
        try:
            body = response.json()  # the real server answers JSON as text/plain
        except ValueError:
            body = None
        ids = body.get("ids") if isinstance(body, Mapping) else None
        if not isinstance(ids, list):
            raise EngineError(f"event API answered without ids: {response.text[:200]!r}")
        return [str(i) for i in ids]

    async def list_events(
        self,
        *,
        name: str | None = None,
        received_after: datetime | None = None,
        received_before: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """GET /v1/events, newest first, paged by `cursor` (the last `internal_id` seen)."""
        params: list[tuple[str, str]] = []
        if name:
            params.append(("name", name))
        if received_after:
            params.append(("received_after", rfc3339(received_after)))
        if received_before:
            params.append(("received_before", rfc3339(received_before)))
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(found) < limit:
            size = min(V1_EVENTS_PAGE, limit - len(found))
            page_params = [*params, ("limit", str(size))]
            if cursor:
                page_params.append(("cursor", cursor))
            page = await self._data("GET", "/v1/events", params=page_params) or []
            found.extend(dict(event) for event in page if isinstance(event, Mapping))
            if len(page) < size:
                break
            cursor = str(page[-1].get("internal_id") or "") or None
            if cursor is None:
                break
        return found[:limit]

    async def find_events(
        self, event_id: str, *, name: str | None = None, received_after: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Stored events whose producer-given `id` (or internal id) is `event_id`.

        The server cannot look an event up by the producer's id (v1 and v2 want the internal
        ULID), and it stores a duplicate-id event too (its own internal id, usually no run, but
        the run can land on either), so every match is returned, newest first.
        """
        events = await self.list_events(name=name, received_after=received_after, limit=1000)
        return [e for e in events if event_id in (e.get("id"), e.get("internal_id"))]

    async def find_event(self, event_id: str, *, name: str | None = None) -> dict[str, Any] | None:
        """The newest stored event with that id, if any."""
        found = await self.find_events(event_id, name=name)
        return found[0] if found else None

    async def get_event(self, internal_event_id: str) -> dict[str, Any]:
        """GET /v1/events/{internal_id}: the stored event (`name`, `data`, `user`, `id`, `ts`)."""
        data = await self._data("GET", f"/v1/events/{internal_event_id}")
        if not isinstance(data, Mapping):
            raise EngineError(f"event {internal_event_id}: the engine answered without an event")
        return dict(data)

    async def event_runs(self, internal_event_id: str) -> list[RunSummary]:
        """Runs of one event (by internal id): GET /v2/events/{id}/runs, paged.

        Only a server without that route gets the v1 one, and then with a unique query
        parameter: v1 caches `/v1/events/{id}/runs` for 15 s, and a cache hit replays the old
        body, so a read right after sending would return "no runs" for 15 s.
        """
        path = f"/v2/events/{internal_event_id}/runs"
        try:
            items, _ = await self._pages(path, [], page_max=EVENT_RUNS_PAGE_MAX, limit=1000)
        except EngineError as error:
            if not error.route_missing:
                raise
            return await self.event_runs_v1(internal_event_id)
        return [RunSummary.from_json(item) for item in items]

    async def event_runs_v1(self, internal_event_id: str) -> list[RunSummary]:
        """GET /v1/events/{id}/runs (v1 runs: the function's internal UUID, title-case status),
        with a unique query parameter, which the real server's 15 s cache of that route misses."""
        data = await self._data(
            "GET",
            f"/v1/events/{internal_event_id}/runs",
            params={"nocache": uuid.uuid4().hex},
        )
        return [RunSummary.from_json(item) for item in data or [] if isinstance(item, Mapping)]

    async def runs_for_event_id(
        self, event_id: str, *, name: str | None = None, received_after: datetime | None = None
    ) -> list[RunSummary]:
        """Runs of every stored event carrying the producer-given id `event_id`."""
        runs: list[RunSummary] = []
        for event in await self.find_events(event_id, name=name, received_after=received_after):
            runs.extend(await self.event_runs(str(event.get("internal_id") or event.get("id"))))
        return runs

    # -- apps and functions ------------------------------------------------------------------

    async def list_apps(self) -> list[str]:
        """GET /v2/apps: the SDK app ids the engine knows."""
        return [str(app["id"]) for app in await self.list_app_records() if app.get("id")]

    async def list_app_records(self) -> list[dict[str, Any]]:
        """GET /v2/apps: the v2 `App` objects (`id`, `name`, `functionCount`, `latestSync`)."""
        apps, _ = await self._pages("/v2/apps", [], page_max=APPS_PAGE_MAX, limit=ALL)
        return apps

    async def list_functions(self, app_id: str) -> list[str]:
        """GET /v2/apps/{app}/functions: the functions' own ids."""
        functions = await self.list_function_records(app_id)
        return [str(function["id"]) for function in functions if function.get("id")]

    async def list_function_records(self, app_id: str) -> list[dict[str, Any]]:
        """GET /v2/apps/{app}/functions: the v2 `Function` objects (triggers, configuration)."""
        path = f"/v2/apps/{app_id}/functions"
        functions, _ = await self._pages(path, [], page_max=APPS_PAGE_MAX, limit=ALL)
        return functions

    async def list_v1_functions(self, app_name: str) -> list[dict[str, Any]]:
        """GET /v1/apps/{app}/functions: the bare array of function rows (`id` = the app-prefixed
        slug, `internal_id` = the UUID v1 runs name, `config` = the registered configuration)."""
        data = await self._data("GET", f"/v1/apps/{app_name}/functions")
        return [dict(row) for row in data or [] if isinstance(row, Mapping)]

    async def resolve_function(self, ref: str, *, app_id: str | None = None) -> FunctionRef:
        """`app/fn`, `fn` with `app_id`, or the slug `app-fn` -> app id + the function's own id.

        A slug is ambiguous (`support-worker-handle-customer-email`: which dash ends the app
        id?), so it is split at the longest app id the engine knows that prefixes it.
        """
        text = ref.strip()
        if "/" in text:
            app, _, function = text.partition("/")
            if not app or not function:
                raise EngineError(f"function {ref!r} must look like app/function")
            return FunctionRef(app, function.removeprefix(f"{app}-"))
        if app_id:
            return FunctionRef(app_id, text.removeprefix(f"{app_id}-"))
        apps = sorted(await self.list_apps(), key=len, reverse=True)
        for app in apps:
            if text.startswith(f"{app}-") and len(text) > len(app) + 1:
                return FunctionRef(app, text[len(app) + 1 :])
        known = ", ".join(sorted(apps)) or "none"
        raise EngineError(
            f"function {ref!r}: give it as app/function (apps the engine knows: {known})"
        )

    async def invoke(
        self,
        app_id: str,
        function_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Invocation:
        """POST /v2/apps/{app}/functions/{fn}/invoke (cron functions too).

        409 (idempotency key used before) answers the earlier run id in the success envelope;
        422 `function_skipped` (singleton, rate limit, paused) is an EngineError.
        """
        local_id = function_id.removeprefix(f"{app_id}-")
        body: dict[str, Any] = {"data": dict(data or {})}
        if idempotency_key:
            body["idempotencyKey"] = idempotency_key
        response = await self._request(
            "POST", f"/v2/apps/{app_id}/functions/{local_id}/invoke", json=body, accept=(409,)
        )
        payload = response.json()
        run = payload.get("data") if isinstance(payload, Mapping) else None
        run_id = run.get("runId") if isinstance(run, Mapping) else None
        if not run_id:
            raise EngineError(
                f"invoke of {app_id}/{local_id} -> {response.status_code}: {payload!r}"
            )
        return Invocation(run_id=str(run_id), reused=response.status_code == 409)

    # -- runs --------------------------------------------------------------------------------

    async def get_run(self, run_id: str, *, include_output: bool = True) -> RunSummary:
        """GET /v2/runs/{id} (v1 on a server without it: no app / function ids there)."""
        params = {"include_output": "true"} if include_output else {}
        try:
            data = await self._data("GET", f"/v2/runs/{run_id}", params=params)
        except EngineError as error:
            if not error.route_missing:
                raise
            return await self.get_run_v1(run_id)
        if not isinstance(data, Mapping):
            raise EngineError(f"run {run_id}: the engine answered without a run")
        return RunSummary.from_json(data)

    async def get_run_v1(self, run_id: str) -> RunSummary:
        """GET /v1/runs/{id}: the v1 run, which alone links a rerun to its original run.

        With a unique query parameter: the real server caches v1 runs for 3 s."""
        data = await self._data("GET", f"/v1/runs/{run_id}", params={"nocache": uuid.uuid4().hex})
        if not isinstance(data, Mapping):
            raise EngineError(f"run {run_id}: the engine answered without a run")
        return RunSummary.from_json(data)

    async def run_trace(self, run_id: str, *, include_output: bool = False) -> RunTrace:
        """GET /v2/runs/{id}/trace: the span tree (steps, attempts, times)."""
        params = {"include_output": "true"} if include_output else {}
        data = await self._data("GET", f"/v2/runs/{run_id}/trace", params=params)
        if not isinstance(data, Mapping):
            raise EngineError(f"run {run_id}: the engine answered without a trace")
        return RunTrace.from_json(data)

    async def runs_page(
        self,
        *,
        app_id: str | Sequence[str] | None = None,
        function_id: str | Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        include_output: bool = False,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RunsPage:
        """GET /v2/runs with the filters as the server takes them, newest first, from `cursor`
        until `limit` runs (pages of at most 100).

        `function_id` is the function's own id and needs `app_id` (the server refuses it
        alone); statuses in any spelling (`Failed`, `FAILED`, `Scheduled`). `since` / `until`
        bound the time the run was queued (the server's default time field)."""
        params = [("app_id", app) for app in _ids(app_id)]
        params.extend(("function_id", function) for function in _ids(function_id))
        params.extend(("status", value) for value in status_filter(status or ()))
        if since:
            params.append(("from", _moment(since)))
        if until:
            params.append(("until", _moment(until)))
        if include_output:
            params.append(("include_output", "true"))
        items, page = await self._pages(
            "/v2/runs", params, page_max=RUNS_PAGE_MAX, limit=limit, cursor=cursor
        )
        return RunsPage([RunSummary.from_json(item) for item in items], page)

    async def list_runs(
        self,
        *,
        app_id: str | None = None,
        function_id: str | Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_output: bool = False,
        limit: int = 100,
    ) -> list[RunSummary]:
        """Runs, newest first, up to `limit`, with functions named as people name them.

        `function_id` is the function's own id with `app_id`, or `app/fn`, or the slug `app-fn`
        (resolved with `resolve_function`); a list for several. The server itself wants
        `app_id` plus the function's own id: a slug there silently matches nothing.
        """
        functions = _ids(function_id)
        for index, function in enumerate(functions):
            if "/" in function or not app_id:
                # `app/fn`, or a slug `app-fn` (split at a known app id: one GET /v2/apps)
                ref = await self.resolve_function(function)
                if app_id not in (None, ref.app_id):
                    raise EngineError(f"function {function!r} is not in app {app_id!r}")
                app_id = ref.app_id
                functions[index] = ref.function_id
            else:
                functions[index] = function.removeprefix(f"{app_id}-")
        page = await self.runs_page(
            app_id=app_id,
            function_id=functions,
            status=status,
            since=since,
            until=until,
            include_output=include_output,
            limit=limit,
        )
        return page.runs

    async def cancel_run(self, run_id: str) -> None:
        """POST /v2/runs/{id}/cancel; a run that already ended is a clear EngineError."""
        try:
            await self._request("POST", f"/v2/runs/{run_id}/cancel", json={})
        except EngineError as error:
            if error.code == "run_already_ended":
                message = f"run {run_id} has already ended; nothing to cancel"
            elif error.code == "run_already_cancelled":
                message = f"run {run_id} is already cancelled"
            else:
                raise
            raise EngineError(message, status=409, code=error.code) from None

    async def rerun(
        self, run_id: str, *, from_step: str | None = None, step_input: list[Any] | None = None
    ) -> str:
        """POST /v2/runs/{id}/rerun (from the top, or from a step by its name); the new run id."""
        body: dict[str, Any] = {}
        if from_step:
            body["fromStep"] = {"stepId": from_step}
            if step_input is not None:
                body["fromStep"]["input"] = step_input
        data = await self._data("POST", f"/v2/runs/{run_id}/rerun", json=body)
        new_id = data.get("runId") if isinstance(data, Mapping) else None
        if not new_id:
            raise EngineError(f"rerun of {run_id} answered without a run id: {data!r}")
        return str(new_id)
