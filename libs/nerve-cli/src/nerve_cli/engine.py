"""A small client for the engine's public REST API (protocol doc §8).

Only public routes are used, so the same client drives the embedded devserver and a real Inngest
server (`inngest dev` or `inngest start`):

- Event API: `POST /e/{event_key}`
- `/v1`: `GET /v1/events`, `GET /v1/events/{internal_id}/runs`, `GET /v1/runs/{run_id}`,
  `DELETE /v1/runs/{run_id}`, `POST /v1/cancellations`
- `/v2`: `GET /v2/runs` (filters), `GET /v2/runs/{run_id}/trace`, `POST /v2/runs/{run_id}/rerun`

With a signing key (self-hosted `inngest start`, Inngest Cloud) every API call carries
`Authorization: Bearer <hashed signing key>`, the same credential the SDK uses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})


class EngineError(RuntimeError):
    """The engine refused a request or could not be reached; the message says which and why."""


def hashed_signing_key(signing_key: str) -> str:
    """The SDK's bearer credential: sha256 over the hex key without its `signkey-<env>-` prefix."""
    bare = re.sub(r"^signkey-\w+-", "", signing_key)
    try:
        raw = bytes.fromhex(bare)
    except ValueError as error:
        raise EngineError(
            "INNGEST_SIGNING_KEY must be hex after its signkey-<env>- prefix"
        ) from error
    return hashlib.sha256(raw).hexdigest()


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with a `Z`, the format the REST API expects."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class RunSummary:
    """The fields of a run every command shows, read from v1 or v2 shapes alike."""

    run_id: str
    status: str
    function_id: str
    started_at: str | None
    ended_at: str | None
    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSummary:
        run_id = data.get("run_id") or data.get("id") or ""
        function = data.get("function")
        function_id = (
            data.get("function_slug")
            or (function.get("slug") if isinstance(function, Mapping) else None)
            or data.get("function_id")
            or ""
        )
        return cls(
            run_id=str(run_id),
            status=str(data.get("status") or "Unknown"),
            function_id=str(function_id),
            started_at=_opt_str(
                data.get("run_started_at") or data.get("started_at") or data.get("queued_at")
            ),
            ended_at=_opt_str(data.get("ended_at")),
            raw=data,
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _in_window(run: RunSummary, since: datetime | None, until: datetime | None) -> bool:
    started = _parse_time(run.started_at)
    if started is None:
        return True
    if since is not None and started < since:
        return False
    return not (until is not None and started > until)


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

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise EngineError(f"engine at {self.base_url} unreachable: {error}") from error
        if response.status_code >= 400:
            raise EngineError(f"{method} {path} -> {response.status_code}: {_error_text(response)}")
        return response

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if not response.content:
            return None
        body = response.json()
        if isinstance(body, Mapping) and "data" in body:
            return body["data"]
        return body

    # -- events ------------------------------------------------------------------------------

    def send_events(self, events: list[Mapping[str, Any]]) -> list[str]:
        """POST /e/{key}; returns the ids the engine assigned, in order."""
        response = self._request("POST", f"/e/{self.event_key}", json=list(events))
        body = response.json()
        ids = body.get("ids") if isinstance(body, Mapping) else None
        if not isinstance(ids, list):
            raise EngineError(f"event API answered without ids: {body!r}")
        return [str(i) for i in ids]

    def list_events(
        self, *, name: str | None = None, received_after: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if name:
            params["name"] = name
        if received_after:
            params["received_after"] = rfc3339(received_after)
        data = self._data("GET", "/v1/events", params=params)
        return list(data or [])

    def find_event(self, event_id: str, *, name: str | None = None) -> dict[str, Any] | None:
        """The stored event whose user-given `id` (or internal id) is `event_id`, if any."""
        for event in self.list_events(name=name, limit=1000):
            if event_id in (event.get("id"), event.get("internal_id")):
                return event
        return None

    def event_runs(self, internal_event_id: str) -> list[RunSummary]:
        """Runs of an event: /v2 (names functions by slug), else /v1 (by UUID)."""
        try:
            data = self._data("GET", f"/v2/events/{internal_event_id}/runs")
        except EngineError:
            data = self._data("GET", f"/v1/events/{internal_event_id}/runs")
        return [RunSummary.from_json(item) for item in data or []]

    # -- runs --------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunSummary:
        return RunSummary.from_json(self._data("GET", f"/v1/runs/{run_id}"))

    def run_trace(self, run_id: str) -> Any:
        return self._data("GET", f"/v2/runs/{run_id}/trace")

    def list_runs(
        self,
        *,
        function_id: str | None = None,
        app_id: str | None = None,
        status: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[RunSummary]:
        """GET /v2/runs with its filters, following the cursor until `limit` runs."""
        return list(
            self.iter_runs(
                function_id=function_id,
                app_id=app_id,
                status=status,
                since=since,
                until=until,
                limit=limit,
            )
        )

    def iter_runs(
        self,
        *,
        function_id: str | None = None,
        app_id: str | None = None,
        status: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> Iterator[RunSummary]:
        params: list[tuple[str, str]] = [("limit", str(min(limit, 100)))]
        if function_id:
            params.append(("function_id", function_id))
        if app_id:
            params.append(("app_id", app_id))
        if status:
            # One comma-separated value: what the devserver parses, and a plain value for one.
            params.append(("status", ",".join(status)))
        if since:
            params.append(("from", rfc3339(since)))
        if until:
            params.append(("until", rfc3339(until)))
        seen = 0
        cursor: str | None = None
        while seen < limit:
            page_params = [*params, ("cursor", cursor)] if cursor else params
            response = self._request("GET", "/v2/runs", params=page_params)
            body = response.json()
            items = body.get("data") or []
            for item in items:
                run = RunSummary.from_json(item)
                # The window is also applied here: not every server filters by from/until.
                if not _in_window(run, since, until):
                    continue
                yield run
                seen += 1
                if seen >= limit:
                    return
            page = body.get("page") or {}
            cursor = page.get("cursor") if page.get("has_more") else None
            if not items or not cursor:
                return

    def cancel_run(self, run_id: str) -> None:
        self._request("DELETE", f"/v1/runs/{run_id}")

    def rerun(self, run_id: str, *, from_step: str | None = None) -> str:
        """POST /v2/runs/{id}/rerun; returns the new run id."""
        body: dict[str, Any] = {}
        if from_step:
            body["from_step"] = {"step_id": from_step}
        data = self._data("POST", f"/v2/runs/{run_id}/rerun", json=body)
        if isinstance(data, Mapping):
            new_id = data.get("run_id") or data.get("id")
            if new_id:
                return str(new_id)
        raise EngineError(f"rerun of {run_id} answered without a run id: {data!r}")

    def bulk_cancel(
        self,
        *,
        app_id: str,
        function_id: str,
        started_before: datetime,
        started_after: datetime | None = None,
        if_expression: str | None = None,
    ) -> dict[str, Any]:
        """POST /v1/cancellations (app id + the function's local id + window + optional `if`)."""
        body: dict[str, Any] = {
            "app_id": app_id,
            "function_id": function_id,
            "started_before": rfc3339(started_before),
        }
        if started_after:
            body["started_after"] = rfc3339(started_after)
        if if_expression:
            body["if"] = if_expression
        data = self._data("POST", "/v1/cancellations", json=body)
        return dict(data) if isinstance(data, Mapping) else {"result": data}

    def invoke(
        self, app_id: str, function_id: str, data: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST /v2/apps/{app}/functions/{fn}/invoke (works for cron functions too)."""
        local_id = function_id.removeprefix(f"{app_id}-")
        result = self._data(
            "POST",
            f"/v2/apps/{app_id}/functions/{local_id}/invoke",
            json={"data": dict(data or {})},
        )
        return dict(result) if isinstance(result, Mapping) else {"result": result}

    def health(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, Mapping):
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])
    return str(body)[:300]
