"""The dashboard's and MCP endpoint's only way into the engine: its public REST API.

`EngineClient` speaks `/e/{key}`, `/v1` and `/v2` over httpx, either in process (an ASGI transport
on the devserver app itself: no port, no network hop) or to any URL (a real Inngest server works
too). Responses are unwrapped from the `{"data": ...}` envelope; errors raise `EngineError` with
the engine's message so pages and tools can show it.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else str(value)
    return str(body)


def _unwrap(body: Any) -> Any:
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


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
            return response.json()
        except ValueError:
            return response.text

    # ---- reads -------------------------------------------------------------------------------

    async def health(self) -> Any:
        return await self._request("GET", "/health")

    async def list_runs(
        self,
        *,
        status: list[str] | None = None,
        app_id: str | None = None,
        function_id: str | None = None,
        from_: str | None = None,
        until: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_output: bool = False,
    ) -> dict[str, Any]:
        """`/v2/runs`: returns {"data": [...], "page": {...}} (page may be missing)."""
        params: dict[str, Any] = {
            "status": ",".join(status) if status else None,
            "app_id": app_id,
            "function_id": function_id,
            "from": from_,
            "until": until,
            "limit": limit,
            "cursor": cursor,
            "include_output": "true" if include_output else None,
        }
        body = await self._request("GET", "/v2/runs", params=params)
        if isinstance(body, dict):
            data = body.get("data") or []
            return {"data": list(data), "page": body.get("page") or {}}
        return {"data": list(body or []), "page": {}}

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
        return list(_unwrap(await self._request("GET", f"/v1/events/{internal_id}/runs")) or [])

    async def list_apps(self) -> list[dict[str, Any]]:
        return list(_unwrap(await self._request("GET", "/v2/apps")) or [])

    async def app_functions(self, app_name: str) -> list[dict[str, Any]]:
        """`/v1/apps/{app}/functions`: the bare array of function rows (with config)."""
        return list(_unwrap(await self._request("GET", f"/v1/apps/{app_name}/functions")) or [])

    async def v2_app_functions(self, app_id: str) -> list[dict[str, Any]]:
        return list(_unwrap(await self._request("GET", f"/v2/apps/{app_id}/functions")) or [])

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
            payload["idempotency_key"] = idempotency_key
        path = f"/v2/apps/{app_id}/functions/{function_id}/invoke"
        result: dict[str, Any] = _unwrap(await self._request("POST", path, json=payload)) or {}
        return result

    async def cancel_run(self, run_id: str) -> Any:
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
        payload: dict[str, Any] = {
            "app_id": app_id,
            "function_id": function_id,
            "started_before": started_before,
        }
        if started_after:
            payload["started_after"] = started_after
        if expression:
            payload["if"] = expression
        return _unwrap(await self._request("POST", "/v1/cancellations", json=payload))

    async def rerun(self, run_id: str, *, from_step: Mapping[str, Any] | None = None) -> Any:
        payload: dict[str, Any] = {}
        if from_step:
            payload["from_step"] = dict(from_step)
        return _unwrap(await self._request("POST", f"/v2/runs/{run_id}/rerun", json=payload))
