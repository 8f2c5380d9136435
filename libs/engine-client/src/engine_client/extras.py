"""The devserver's own REST routes, beyond the real Inngest server's API.

The dashboard shows what they add (queued jobs of a run, a function's flow-control state) where
the engine answers them, and nothing where it does not; `bulk_cancel` is the v1 route the
devserver honours and the real server does not (it answers 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import EngineError
from .wire import EngineHttp


class DevserverExtras:
    """Routes only the devserver has (the dashboard shows them where the engine answers)."""

    def __init__(self, http: EngineHttp) -> None:
        self._http = http

    async def health(self) -> Any:
        """GET /health."""
        return await self._http._json("GET", "/health")

    async def run_jobs(self, run_id: str) -> list[dict[str, Any]]:
        """GET /v1/runs/{id}/jobs: queued jobs of the run (sleep wake-ups, wait timeouts);
        none where the engine has no such route."""
        try:
            data = await self._http._data("GET", f"/v1/runs/{run_id}/jobs")
        except EngineError as error:
            if error.status in (404, 405, 501):
                return []
            raise
        return [dict(job) for job in data or [] if isinstance(job, Mapping)]

    async def function_flow(self, app_id: str, function_id: str) -> dict[str, Any] | None:
        """The devserver's flow-control state of a function (None where the engine lacks it)."""
        path = f"/v2/apps/{app_id}/functions/{function_id}/flow"
        try:
            data = await self._http._data("GET", path)
        except EngineError as error:
            if error.status in (404, 405, 501):
                return None
            raise
        return dict(data) if isinstance(data, Mapping) else None

    async def bulk_cancel(
        self,
        *,
        app_id: str,
        function_id: str,
        started_before: str,
        started_after: str | None = None,
        expression: str | None = None,
    ) -> Any:
        """POST /v1/cancellations (the devserver honours it; the real server answers 500).
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
        body = await self._http._json("POST", "/v1/cancellations", json=payload)
        return body.get("data", body) if isinstance(body, Mapping) else body  # no envelope here
