"""Reading webhook bodies safely: size limit, content type, JSON.

Every webhook handler needs the raw bytes (signatures are computed over them), so FastAPI's body
parsing is bypassed and this module does it with the gateway's rules:

- a body over the limit is refused with 413 *without reading it all*: a declared Content-Length
  over the limit is refused before a byte is read; a chunked body is read until it crosses the
  limit, then refused;
- a content type other than JSON -> 415; bytes that are not a JSON object (or exceed the
  limits of `bounds.load_json`: depth, numbers) -> 400.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from .bounds import JSONRefused, load_json


class GatewayHTTPError(Exception):
    """A client error with a clear message; rendered as `{"detail": ...}` with `status_code`."""

    def __init__(
        self, status_code: int, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}


def describe_fields(error: ValidationError, *, prefix: str = "") -> str:
    """`Field: message; ...` naming every offending field path."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        problems.append(f"{prefix}{path}: {item['msg']}")
    return "; ".join(problems)


def schema_error(what: str, error: ValidationError, *, prefix: str = "") -> GatewayHTTPError:
    """422 naming each invalid field."""
    return GatewayHTTPError(422, f"invalid {what}: {describe_fields(error, prefix=prefix)}")


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_size = int(declared)
        except ValueError:
            raise GatewayHTTPError(400, "Content-Length is not a number") from None
        if declared_size > limit:
            raise GatewayHTTPError(
                413, f"body of {declared_size} bytes exceeds the limit of {limit} bytes"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise GatewayHTTPError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_json_content_type(request: Request) -> None:
    """415 unless the content type is JSON (`application/json`, optionally with a charset)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        shown = media_type or "none"
        raise GatewayHTTPError(415, f"content type must be application/json, got {shown}")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, its strings cleaned (see `bounds`); 400 when it is not valid
    UTF-8 JSON within the limits, or not an object."""
    try:
        value = load_json(body)
    except JSONRefused as exc:
        raise GatewayHTTPError(400, str(exc)) from None
    if not isinstance(value, dict):
        raise GatewayHTTPError(400, f"body must be a JSON object, got {type(value).__name__}")
    return value


async def read_json_webhook(request: Request, limit: int) -> tuple[bytes, dict[str, Any]]:
    """Content type, size limit, then JSON: the checks every JSON webhook shares."""
    require_json_content_type(request)
    body = await read_limited_body(request, limit)
    return body, parse_json_object(body)
