"""Errors, credentials and times of the engine's REST API (shared by the client and its tests)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx


class EngineError(RuntimeError):
    """The engine refused a request or could not be reached; the message says which and why.

    `status` is the HTTP status the server meant (for v1 GETs that is the body's `status`, as the
    transport status is 200), `code` the v2 error code (`not_found`, `run_already_ended`, ...).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def route_missing(self) -> bool:
        """The server has no such route (an older server): worth trying the v1 equivalent."""
        return self.status in (404, 405, 501) and self.code in (None, "api_error")


def hashed_signing_key(signing_key: str) -> str:
    """The SDK's bearer credential: sha256 over the hex key without its `signkey-<env>-` prefix."""
    bare = re.sub(r"^signkey-\w+-", "", signing_key.strip())
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
    moment = moment.astimezone(UTC)
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            first = errors[0]
            code = str(first.get("code") or "") or None
            return EngineError(str(first.get("message") or code), status=status, code=code)
        body_status = body.get("status")
        if body.get("error") and isinstance(body_status, int) and body_status >= 400:
            return EngineError(str(body["error"]), status=body_status)
        if status >= 400:
            text = body.get("error") or body.get("message") or body
            return EngineError(str(text)[:300], status=status)
        return None
    if status >= 400:
        text = response.text.strip()[:300] or response.reason_phrase
        return EngineError(text, status=status)
    return None
