"""A client for the engine's public REST API, in the real Inngest server's dialect.

Only public routes are used, so the same client drives a real Inngest server (`inngest dev`,
`inngest start`, Inngest Cloud) and the embedded devserver, which answers in the same shapes:

- Event API: `POST /e/{event_key}`
- `/v2`: runs (`GET /v2/runs`, `/v2/runs/{id}`, `/v2/runs/{id}/trace`, `/v2/events/{id}/runs`),
  `POST /v2/runs/{id}/cancel`, `POST /v2/runs/{id}/rerun`, apps and functions
  (`GET /v2/apps`, `/v2/apps/{app}/functions`), `POST /v2/apps/{app}/functions/{fn}/invoke`
- `/v1`: `GET /v1/events` (the only way to find an event by the id its producer gave it), and the
  v1 run routes as a fallback for servers without the v2 ones.

Not used, because the real server never honours them: `DELETE /v1/runs/{id}` (always 404) and
`/v1/cancellations` (500). A bulk cancel is a v2 run listing plus one v2 cancel per run.

With a signing key (self-hosted `inngest start`, Inngest Cloud) every call carries
`Authorization: Bearer <hashed signing key>`, the credential the SDK itself sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from .engine_errors import EngineError, error_from_response, hashed_signing_key, rfc3339
from .engine_models import (
    TERMINAL_STATUSES,
    FunctionRef,
    Invocation,
    Page,
    RunStatus,
    RunSummary,
    RunTrace,
    StepSpan,
    TraceSpan,
    iso,
    parse_time,
)

__all__ = [
    "TERMINAL_STATUSES",
    "EngineClient",
    "EngineError",
    "FunctionRef",
    "Invocation",
    "RunStatus",
    "RunSummary",
    "RunTrace",
    "StepSpan",
    "TraceSpan",
    "hashed_signing_key",
    "iso",
    "parse_time",
    "rfc3339",
]

RUNS_PAGE_MAX = 100  # `GET /v2/runs`: "Limit cannot exceed 100"
EVENT_RUNS_PAGE_MAX = 40  # `GET /v2/events/{id}/runs`: "Limit cannot exceed 40"
V1_EVENTS_PAGE = 50  # `GET /v1/events` answers at most 51 events a page (both servers)


class EngineClient:
    """Synchronous REST client (the CLI is synchronous; long loops show progress themselves)."""

    def __init__(
        self,
        base_url: str,
        *,
        event_key: str = "dev",
        signing_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.event_key = event_key
        headers = {"accept": "application/json"}
        if signing_key:
            headers["authorization"] = f"Bearer {hashed_signing_key(signing_key)}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, accept: Sequence[int] = (), **kwargs: Any
    ) -> httpx.Response:
        """One call; any error dialect becomes an EngineError (`accept`: statuses that aren't)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise EngineError(f"engine at {self.base_url} unreachable: {error}") from error
        if response.status_code in accept:
            return response
        found = error_from_response(response)
        if found is None:
            return response
        if found.status == 401:
            raise EngineError(
                f"{method} {path}: 401 {found} (set INNGEST_SIGNING_KEY / --signing-key)",
                status=401,
            )
        raise EngineError(
            f"{method} {path} -> {found.status}: {found}", status=found.status, code=found.code
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise EngineError(f"{method} {path}: not JSON: {response.text[:200]!r}") from error

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        body = self._json(method, path, **kwargs)
        return body.get("data") if isinstance(body, Mapping) else body

    def _paged(
        self, path: str, params: list[tuple[str, str]], *, page_max: int, limit: int
    ) -> Iterator[Mapping[str, Any]]:
        """Items of a v2 listing, following `page.cursor` while `page.hasMore`, up to `limit`."""
        seen = 0
        cursor: str | None = None
        while seen < limit:
            page_params = [*params, ("limit", str(min(page_max, limit - seen)))]
            if cursor:
                page_params.append(("cursor", cursor))
            body = self._json("GET", path, params=page_params)
            body = body if isinstance(body, Mapping) else {}
            items = body.get("data") or []  # v2 leaves `data` out when the list is empty
            for item in items:
                if isinstance(item, Mapping):
                    yield item
                    seen += 1
                    if seen >= limit:
                        return
            page = Page.from_json(body.get("page"))
            if not items or not page.has_more or not page.cursor:
                return
            cursor = page.cursor

    # -- events ------------------------------------------------------------------------------

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """POST /e/{key}; returns the internal ids the engine assigned, in order."""
        response = self._request("POST", f"/e/{self.event_key}", json=list(events))
        try:
            body = response.json()  # the real server answers JSON as text/plain
        except ValueError:
            body = None
        ids = body.get("ids") if isinstance(body, Mapping) else None
        if not isinstance(ids, list):
            raise EngineError(f"event API answered without ids: {response.text[:200]!r}")
        return [str(i) for i in ids]

    def list_events(
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
            page = self._data("GET", "/v1/events", params=page_params) or []
            found.extend(dict(event) for event in page if isinstance(event, Mapping))
            if len(page) < size:
                break
            cursor = str(page[-1].get("internal_id") or "") or None
            if cursor is None:
                break
        return found[:limit]

    def find_events(
        self, event_id: str, *, name: str | None = None, received_after: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Stored events whose producer-given `id` (or internal id) is `event_id`.

        The server cannot look an event up by the producer's id (v1 and v2 want the internal
        ULID), and it stores a duplicate-id event too (its own internal id, usually no run, but
        the run can land on either), so every match is returned, newest first.
        """
        events = self.list_events(name=name, received_after=received_after, limit=1000)
        return [e for e in events if event_id in (e.get("id"), e.get("internal_id"))]

    def find_event(self, event_id: str, *, name: str | None = None) -> dict[str, Any] | None:
        """The newest stored event with that id, if any."""
        found = self.find_events(event_id, name=name)
        return found[0] if found else None

    def get_event(self, internal_event_id: str) -> dict[str, Any]:
        """GET /v1/events/{internal_id}: the stored event (`name`, `data`, `user`, `id`, `ts`)."""
        data = self._data("GET", f"/v1/events/{internal_event_id}")
        if not isinstance(data, Mapping):
            raise EngineError(f"event {internal_event_id}: the engine answered without an event")
        return dict(data)

    def event_runs(self, internal_event_id: str) -> list[RunSummary]:
        """Runs of one event (by internal id): GET /v2/events/{id}/runs, paged.

        Only a server without that route gets the v1 one, and then with a unique query
        parameter: v1 caches `/v1/events/{id}/runs` for 15 s, and a cache hit replays the old
        body, so a read right after sending would return "no runs" for 15 s.
        """
        try:
            items = list(
                self._paged(
                    f"/v2/events/{internal_event_id}/runs",
                    [],
                    page_max=EVENT_RUNS_PAGE_MAX,
                    limit=1000,
                )
            )
        except EngineError as error:
            if not error.route_missing:
                raise
            data = self._data(
                "GET",
                f"/v1/events/{internal_event_id}/runs",
                params={"nocache": uuid.uuid4().hex},
            )
            items = [item for item in data or [] if isinstance(item, Mapping)]
        return [RunSummary.from_json(item) for item in items]

    def runs_for_event_id(
        self, event_id: str, *, name: str | None = None, received_after: datetime | None = None
    ) -> list[RunSummary]:
        """Runs of every stored event carrying the producer-given id `event_id`."""
        runs: list[RunSummary] = []
        for event in self.find_events(event_id, name=name, received_after=received_after):
            runs.extend(self.event_runs(str(event.get("internal_id") or event.get("id"))))
        return runs

    # -- runs --------------------------------------------------------------------------------

    def get_run(self, run_id: str, *, include_output: bool = True) -> RunSummary:
        """GET /v2/runs/{id} (v1 on a server without it: no app / function ids there)."""
        params = {"include_output": "true"} if include_output else {}
        try:
            data = self._data("GET", f"/v2/runs/{run_id}", params=params)
        except EngineError as error:
            if not error.route_missing:
                raise
            data = self._data("GET", f"/v1/runs/{run_id}", params={"nocache": uuid.uuid4().hex})
        if not isinstance(data, Mapping):
            raise EngineError(f"run {run_id}: the engine answered without a run")
        return RunSummary.from_json(data)

    def run_trace(self, run_id: str, *, include_output: bool = False) -> RunTrace:
        """GET /v2/runs/{id}/trace: the span tree (steps, attempts, times)."""
        params = {"include_output": "true"} if include_output else {}
        data = self._data("GET", f"/v2/runs/{run_id}/trace", params=params)
        if not isinstance(data, Mapping):
            raise EngineError(f"run {run_id}: the engine answered without a trace")
        return RunTrace.from_json(data)

    def iter_runs(
        self,
        *,
        app_id: str | None = None,
        function_id: str | Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_output: bool = False,
        limit: int = 100,
    ) -> Iterator[RunSummary]:
        """GET /v2/runs, newest first, following the cursor until `limit` runs.

        `function_id` is the function's own id with `app_id`, or `app/fn`, or the slug `app-fn`
        (resolved with `resolve_function`); a list for several. The server itself wants
        `app_id` plus the function's own id: a slug there silently matches nothing.
        `since` / `until` bound the time the run was queued (the server's default time field).
        """
        functions = [function_id] if isinstance(function_id, str) else list(function_id or [])
        for index, function in enumerate(functions):
            if "/" in function or not app_id:
                # `app/fn`, or a slug `app-fn` (split at a known app id: one GET /v2/apps)
                ref = self.resolve_function(function)
                if app_id not in (None, ref.app_id):
                    raise EngineError(f"function {function!r} is not in app {app_id!r}")
                app_id = ref.app_id
                functions[index] = ref.function_id
            else:
                functions[index] = function.removeprefix(f"{app_id}-")
        params: list[tuple[str, str]] = []
        if app_id:
            params.append(("app_id", app_id))
        params.extend(("function_id", fn) for fn in functions)
        params.extend(("status", RunStatus.parse(s).value) for s in status or ())
        if since:
            params.append(("from", rfc3339(since)))
        if until:
            params.append(("until", rfc3339(until)))
        if include_output:
            params.append(("include_output", "true"))
        for item in self._paged("/v2/runs", params, page_max=RUNS_PAGE_MAX, limit=limit):
            yield RunSummary.from_json(item)

    def list_runs(
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
        return list(
            self.iter_runs(
                app_id=app_id,
                function_id=function_id,
                status=status,
                since=since,
                until=until,
                include_output=include_output,
                limit=limit,
            )
        )

    def cancel_run(self, run_id: str) -> None:
        """POST /v2/runs/{id}/cancel; a run that already ended is a clear EngineError."""
        try:
            self._request("POST", f"/v2/runs/{run_id}/cancel", json={})
        except EngineError as error:
            if error.code == "run_already_ended":
                raise EngineError(
                    f"run {run_id} has already ended; nothing to cancel",
                    status=409,
                    code=error.code,
                ) from None
            if error.code == "run_already_cancelled":
                raise EngineError(
                    f"run {run_id} is already cancelled", status=409, code=error.code
                ) from None
            raise

    def rerun(
        self, run_id: str, *, from_step: str | None = None, step_input: list[Any] | None = None
    ) -> str:
        """POST /v2/runs/{id}/rerun (from the top, or from a step by its name); the new run id."""
        body: dict[str, Any] = {}
        if from_step:
            body["fromStep"] = {"stepId": from_step}
            if step_input is not None:
                body["fromStep"]["input"] = step_input
        data = self._data("POST", f"/v2/runs/{run_id}/rerun", json=body)
        new_id = data.get("runId") if isinstance(data, Mapping) else None
        if not new_id:
            raise EngineError(f"rerun of {run_id} answered without a run id: {data!r}")
        return str(new_id)

    def invoke(
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
        response = self._request(
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

    # -- apps and functions ------------------------------------------------------------------

    def list_apps(self) -> list[str]:
        """GET /v2/apps: the SDK app ids the engine knows."""
        items = self._paged("/v2/apps", [], page_max=100, limit=10_000)
        return [str(item.get("id")) for item in items if item.get("id")]

    def list_functions(self, app_id: str) -> list[str]:
        """GET /v2/apps/{app}/functions: the functions' own ids."""
        items = self._paged(f"/v2/apps/{app_id}/functions", [], page_max=100, limit=10_000)
        return [str(item.get("id")) for item in items if item.get("id")]

    def resolve_function(self, ref: str, *, app_id: str | None = None) -> FunctionRef:
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
        apps = sorted(self.list_apps(), key=len, reverse=True)
        for app in apps:
            if text.startswith(f"{app}-") and len(text) > len(app) + 1:
                return FunctionRef(app, text[len(app) + 1 :])
        known = ", ".join(sorted(apps)) or "none"
        raise EngineError(
            f"function {ref!r}: give it as app/function (apps the engine knows: {known})"
        )
