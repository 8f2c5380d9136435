"""The dashboard's and MCP endpoint's only way into the engine: its public REST API.

`EngineClient` speaks `/e/{key}`, `/v1` and `/v2` over httpx, either in process (an ASGI transport
on the devserver app itself: no port, no network hop) or to any URL (a real Inngest server works
too). It speaks the real server's dialect: v2 errors `{"errors": [{"code", "message"}]}`, v1 GET
errors in a body answered with HTTP 200, v2 paging by `cursor` / `hasMore` (at most 100 runs a
page). Responses are unwrapped from the `{"data": ...}` envelope (a v2 list without `data` is
empty); errors raise `EngineError` with the engine's message so pages and tools can show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx


class EngineError(RuntimeError):
    """The engine answered with an error status (message names the problem)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("code") or errors)
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else str(value)
    return str(body)


def _unwrap(body: Any) -> Any:
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


def _items(body: Any) -> list[dict[str, Any]]:
    """The items of a v2 list answer: proto-JSON leaves `data` out when the list is empty."""
    if isinstance(body, dict):
        return list(body.get("data") or [])
    return list(body or [])


def bearer_headers(signing_key: str | None) -> dict[str, str]:
    """The SDK's API auth: `Bearer <hashed signing key>` (devserver.signing when present)."""
    if not signing_key:
        return {}
    try:
        from devserver.signing import hashed_key

        token = hashed_key(signing_key)
    except ImportError:
        token = signing_key
    return {"Authorization": f"Bearer {token}"}


# The dashboard's run statuses (v1 spelling) -> the v2 status filter.
V2_STATUS_FILTER = {
    "queued": "QUEUED",
    "scheduled": "QUEUED",
    "running": "RUNNING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
    "skipped": "SKIPPED",  # devserver extra
}
V2_MAX_LIMIT = 100


class EngineClient:
    """Thin async wrapper over the engine's REST API."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        event_key: str | None = None,
    ) -> None:
        self.http = http
        self.event_key = event_key or "dev"

    @classmethod
    def for_url(
        cls, base_url: str, *, signing_key: str | None = None, event_key: str | None = None
    ) -> EngineClient:
        headers = bearer_headers(signing_key)
        http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0)
        return cls(http, event_key=event_key)

    @classmethod
    def in_process(
        cls, app: Any, *, signing_key: str | None = None, event_key: str | None = None
    ) -> EngineClient:
        headers = bearer_headers(signing_key)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://devserver.local",
            headers=headers,
            timeout=10.0,
        )
        return cls(http, event_key=event_key)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        clean: dict[str, Any] | None = None
        if params is not None:
            clean = {k: v for k, v in params.items() if v not in (None, "", [])}
        response = await self.http.request(method, path, params=clean, json=json)
        if response.status_code >= 400:
            raise EngineError(response.status_code, _error_message(response))
        if not response.content:
            return None
        try:
            body = response.json()
        except ValueError:
            return response.text
        if (
            isinstance(body, dict)
            and body.get("error")
            and isinstance(body.get("status"), int)
            and body["status"] >= 400
        ):  # a v1 GET reports its error in the body, with HTTP 200
            raise EngineError(body["status"], str(body["error"]))
        return body

    # ---- reads -------------------------------------------------------------------------------

    async def health(self) -> Any:
        return await self._request("GET", "/health")

    async def list_runs(
        self,
        *,
        status: list[str] | None = None,
        app_id: str | Sequence[str] | None = None,
        function_id: str | Sequence[str] | None = None,
        from_: str | None = None,
        until: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_output: bool = False,
    ) -> dict[str, Any]:
        """`/v2/runs`, newest first, following `cursor` until `limit` runs (pages of <= 100).

        `status` takes the v1 spellings (`Failed`, `Queued`, ...); `function_id` is the SDK's
        function id and needs `app_id`, as on the real server. Returns {"data", "page"}."""
        statuses = sorted({V2_STATUS_FILTER.get(s.lower(), s.upper()) for s in status or []})
        runs: list[dict[str, Any]] = []
        page: dict[str, Any] = {}
        while len(runs) < limit:
            params: dict[str, Any] = {
                "status": statuses,
                "app_id": [app_id] if isinstance(app_id, str) else list(app_id or []),
                "function_id": (
                    [function_id] if isinstance(function_id, str) else list(function_id or [])
                ),
                "from": from_,
                "until": until,
                "limit": min(V2_MAX_LIMIT, limit - len(runs)),
                "cursor": cursor,
                "include_output": "true" if include_output else None,
            }
            body = await self._request("GET", "/v2/runs", params=params)
            body = body if isinstance(body, dict) else {}
            runs.extend(body.get("data") or [])
            page = body.get("page") or {}
            cursor = page.get("cursor")
            if not page.get("hasMore") or not cursor:
                break
        return {"data": runs, "page": page}

    async def get_run(self, run_id: str, *, include_output: bool = True) -> dict[str, Any]:
        params = {"include_output": "true" if include_output else "false"}
        result: dict[str, Any] = _unwrap(
            await self._request("GET", f"/v2/runs/{run_id}", params=params)
        )
        return result

    async def get_run_v1(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _unwrap(await self._request("GET", f"/v1/runs/{run_id}"))
        return result

    async def run_jobs(self, run_id: str) -> list[dict[str, Any]]:
        """`/v1/runs/{id}/jobs`: queued jobs of the run (sleep wake-ups, wait timeouts)."""
        try:
            return list(_unwrap(await self._request("GET", f"/v1/runs/{run_id}/jobs")) or [])
        except EngineError as exc:
            if exc.status in (404, 405, 501):
                return []
            raise

    async def get_trace(self, run_id: str) -> Any:
        """`/v2/runs/{id}/trace`: {"runId", "rootSpan": {..., "children": [spans]}}."""
        params = {"include_output": "true"}
        return _unwrap(await self._request("GET", f"/v2/runs/{run_id}/trace", params=params))

    async def list_events(
        self, *, limit: int = 50, name: str | None = None, cursor: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"limit": limit, "name": name, "cursor": cursor}
        return list(_unwrap(await self._request("GET", "/v1/events", params=params)) or [])

    async def get_event(self, internal_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _unwrap(await self._request("GET", f"/v1/events/{internal_id}"))
        return result

    async def event_runs(self, internal_id: str) -> list[dict[str, Any]]:
        """`/v2/events/{id}/runs` (v2 run shape). Not the v1 route: the real server caches that
        one for 15 s, so it answers `[]` for a fresh event."""
        body = await self._request("GET", f"/v2/events/{internal_id}/runs", params={"limit": 40})
        return _items(body)

    async def list_apps(self) -> list[dict[str, Any]]:
        return await self._all_pages("/v2/apps")

    async def _all_pages(self, path: str) -> list[dict[str, Any]]:
        """Every item of a v2 list, following `cursor` while `hasMore`."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": V2_MAX_LIMIT, "cursor": cursor}
            body = await self._request("GET", path, params=params)
            items.extend(_items(body))
            page = (body.get("page") if isinstance(body, dict) else None) or {}
            cursor = page.get("cursor")
            if not page.get("hasMore") or not cursor:
                return items

    async def app_functions(self, app_name: str) -> list[dict[str, Any]]:
        """`/v1/apps/{app}/functions`: the bare array of function rows (`id` = app-prefixed slug,
        `internal_id` = the UUID v1 runs name, `config`)."""
        return list(_unwrap(await self._request("GET", f"/v1/apps/{app_name}/functions")) or [])

    async def v2_app_functions(self, app_id: str) -> list[dict[str, Any]]:
        return await self._all_pages(f"/v2/apps/{app_id}/functions")

    async def function_flow(self, app_id: str, function_id: str) -> dict[str, Any] | None:
        """Devserver-only flow-control state of a function (None where the engine lacks it)."""
        path = f"/v2/apps/{app_id}/functions/{function_id}/flow"
        try:
            result = _unwrap(await self._request("GET", path))
        except EngineError as exc:
            if exc.status in (404, 405, 501):
                return None
            raise
        return result if isinstance(result, dict) else None

    # ---- actions -----------------------------------------------------------------------------

    async def send_events(self, events: list[dict[str, Any]]) -> list[str]:
        body = await self._request("POST", f"/e/{self.event_key}", json=events)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise EngineError(500, f"unexpected event API answer: {body!r}")
        return [str(i) for i in ids]

    async def invoke(
        self,
        app_id: str,
        function_id: str,
        data: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"data": dict(data)}
        if idempotency_key:
            payload["idempotencyKey"] = idempotency_key
        path = f"/v2/apps/{app_id}/functions/{function_id}/invoke"
        result: dict[str, Any] = _unwrap(await self._request("POST", path, json=payload)) or {}
        return result

    async def cancel_run(self, run_id: str) -> Any:
        """`POST /v2/runs/{id}/cancel` -> {"runId"}; 409 when the run already ended."""
        return _unwrap(await self._request("POST", f"/v2/runs/{run_id}/cancel"))

    async def bulk_cancel(
        self,
        *,
        app_id: str,
        function_id: str,
        started_before: str,
        started_after: str | None = None,
        expression: str | None = None,
    ) -> Any:
        """`POST /v1/cancellations` (works on the devserver; the real server answers 500).
        `function_id` may be the SDK's id or the app-prefixed slug v1 wants."""
        slug = function_id if function_id.startswith(f"{app_id}-") else f"{app_id}-{function_id}"
        payload: dict[str, Any] = {
            "app_id": app_id,
            "function_id": slug,
            "started_before": started_before,
        }
        if started_after:
            payload["started_after"] = started_after
        if expression:
            payload["if"] = expression
        return _unwrap(await self._request("POST", "/v1/cancellations", json=payload))

    async def rerun(self, run_id: str, *, from_step: Mapping[str, Any] | None = None) -> Any:
        """`POST /v2/runs/{id}/rerun` -> {"runId"}; from_step {"stepId": name or hashed id}."""
        payload: dict[str, Any] = {}
        if from_step:
            step_id = from_step.get("stepId", from_step.get("step_id"))
            payload["fromStep"] = {"stepId": step_id}
            if from_step.get("input") is not None:
                payload["fromStep"]["input"] = from_step["input"]
        return _unwrap(await self._request("POST", f"/v2/runs/{run_id}/rerun", json=payload))
