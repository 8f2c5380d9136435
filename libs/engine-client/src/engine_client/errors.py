"""What the engine's REST API answers when it refuses: one error type for every dialect."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class EngineError(RuntimeError):
    """The engine refused a request or could not be reached; the message says which and why.

    `status` is the HTTP status the server meant (for v1 GETs that is the body's `status`, as the
    transport status is 200), `code` the v2 error code (`not_found`, `run_already_ended`, ...),
    `reason` the engine's own words without the request they answer (what a page shows).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason if reason is not None else message

    @property
    def route_missing(self) -> bool:
        """The server has no such route (an older server): worth trying the v1 equivalent."""
        return self.status in (404, 405, 501) and self.code in (None, "api_error")


def error_from_response(response: httpx.Response) -> EngineError | None:
    """The error a response carries, in any of the server's error dialects, or None.

    v2: `{"errors":[{"code","message"}]}` with the real status. v1: `{"error","status"}`, and
    on GETs the transport status is 200 (the body's `status` is the truth). 401 and unknown v1
    routes: plain text. Event API: `{"ids":[""],"status":400,"error":...}`.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if isinstance(body, Mapping):
        return _error_in_body(body, status)
    if status >= 400:
        text = response.text.strip()[:300] or response.reason_phrase
        return EngineError(text, status=status)
    return None


def _error_in_body(body: Mapping[str, object], status: int) -> EngineError | None:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        code = str(first.get("code") or "") or None
        return EngineError(str(first.get("message") or code), status=status, code=code)
    body_status = body.get("status")
    if body.get("error") and isinstance(body_status, int) and body_status >= 400:
        return EngineError(str(body["error"]), status=body_status)
    if status >= 400:
        text = body.get("error") or body.get("message") or body.get("detail") or body
        return EngineError(str(text)[:300], status=status)
    return None
