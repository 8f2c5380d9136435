"""The ASGI app: event API, registration, health, plus the REST routers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devserver.api_rest import AuthFailed, engine_of, router_v0, router_v1
from devserver.api_v2 import router_v2
from devserver.auth import (
    StartupRefused,
    authentication_failed,
    event_key_ok,
    refuse_public_without_key,
    signing_key_ok,
)
from devserver.config import Settings
from devserver.engine import Engine
from devserver.flow.api import router as flow_router
from devserver.ingest import EventError
from devserver.sync import RegistrationError
from devserver.util import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_REQUEST,
    JsonTooDeep,
    loads_bounded,
)
from devserver.views import auth_failed, public_error, v2_error

__all__ = ["StartupRefused", "create_app"]

log = logging.getLogger("devserver.server")

MAX_EVENT_REQUEST_BYTES = 16 * 1024 * 1024
MAX_REGISTER_BYTES = 16 * 1024 * 1024


class ServerKindMiddleware:
    """Adds X-Inngest-Server-Kind to every response (pure ASGI: cheap on the hot path)."""

    def __init__(self, app: ASGIApp, kind: str) -> None:
        self.app = app
        self.header = (b"x-inngest-server-kind", kind.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds limit bytes."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def event_api_error(status: int, message: str) -> JSONResponse:
    """The real Event API's error body: one empty id, the status, the message."""
    return JSONResponse({"ids": [""], "status": status, "error": message}, status)


# ------------------------------------------------------------------------- error answers
async def auth_error(_request: Request, _exc: Exception) -> Response:
    return auth_failed()


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in each API's own dialect (as the real server)."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if path.startswith(("/v2/", "/api/v2/")) or path in ("/v2", "/api/v2"):
        if exc.status_code == 405:
            return v2_error(501, "api_error", "Method Not Allowed")
        if exc.status_code == 404:
            return v2_error(404, "api_error", "Not Found")
        return v2_error(exc.status_code, "api_error", str(exc.detail))
    if path.startswith("/v1/") and exc.status_code in (404, 405):
        text = "404 page not found" if exc.status_code == 404 else "Method Not Allowed"
        return PlainTextResponse(text + "\n", exc.status_code)
    return JSONResponse(public_error(exc.status_code, str(exc.detail)), exc.status_code)


async def too_deep(request: Request, _exc: Exception) -> Response:
    # Only input nested far beyond MAX_JSON_DEPTH gets here (a route that parses a body
    # without loads_bounded): it is the request that is bad, not the server.
    log.warning("%s %s: input nested too deeply", request.method, request.url.path)
    return JSONResponse(public_error(400, "Invalid request: JSON nested too deeply"), 400)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith(("/v2/", "/api/v2/")):
        return v2_error(400, "api_error", f"Invalid request: {exc.errors()}")
    return JSONResponse(public_error(400, f"Invalid request: {exc.errors()}"), 400)


# ------------------------------------------------------------------------- the SDK's doors
doors = APIRouter()


@doors.get("/health")
async def health() -> dict[str, Any]:
    return {"status": 200, "message": "OK"}


@doors.post("/fn/register")
async def register(request: Request) -> Response:
    engine = engine_of(request)
    if not signing_key_ok(request, engine.settings.signing_key):
        return authentication_failed()
    raw = await read_limited(request, MAX_REGISTER_BYTES)
    if raw is None:
        return JSONResponse(public_error(413, "Invalid request: body too large"), 413)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        result = await engine.sync.register(raw, headers)
    except RegistrationError as exc:
        return JSONResponse(exc.body, exc.status)
    return JSONResponse(result)


@doors.post("/e/{event_key}")
async def send_events(event_key: str, request: Request) -> JSONResponse:
    engine = engine_of(request)
    if not event_key_ok(engine.settings, event_key):
        return JSONResponse({"status": 401, "message": "", "error": "Event key not found"}, 401)
    raw = await read_limited(request, MAX_EVENT_REQUEST_BYTES)
    if raw is None:
        return event_api_error(413, f"request body exceeds {MAX_EVENT_REQUEST_BYTES} bytes")
    try:
        payload = loads_bounded(raw)
    except JsonTooDeep as exc:
        return event_api_error(400, str(exc))
    except ValueError as exc:
        return event_api_error(400, f"invalid JSON: {exc}")
    if not isinstance(payload, dict | list):
        return event_api_error(400, "body must be an event object or an array of events")
    if isinstance(payload, list) and len(payload) > MAX_EVENTS_PER_REQUEST:
        return event_api_error(400, f"too many events: {len(payload)} > {MAX_EVENTS_PER_REQUEST}")
    try:
        ids = await engine.ingest.accept_events(
            payload, seed=request.headers.get("x-inngest-event-id-seed")
        )
    except EventError as exc:
        return event_api_error(413 if "maximum event size" in str(exc) else 400, str(exc))
    return JSONResponse({"ids": ids, "status": 200})


@doors.post("/invoke/{slug}")
async def invoke(slug: str, request: Request) -> Response:
    engine = engine_of(request)
    if not signing_key_ok(request, engine.settings.signing_key):
        return authentication_failed()
    fn = engine.registry.find(slug)
    if fn is None:
        return JSONResponse(public_error(404, f"function not found: {slug}"), 404)
    raw = await read_limited(request, MAX_EVENT_BYTES)
    if raw is None:
        return JSONResponse(public_error(413, "event too large"), 413)
    try:
        body = loads_bounded(raw) if raw.strip() else {}
    except ValueError as exc:
        return JSONResponse(public_error(400, f"invalid JSON: {exc}"), 400)
    data = body.get("data") if isinstance(body, dict) else None
    event_id = await engine.ingest.invoke_function(fn, data if isinstance(data, dict) else {})
    return JSONResponse({"id": event_id, "status": 200})


@doors.get("/dev")
async def dev_info(request: Request) -> Response:
    engine = engine_of(request)
    settings = engine.settings
    if not signing_key_ok(request, settings.signing_key):
        return authentication_failed()
    if settings.server_kind != "dev":
        return JSONResponse(public_error(404, "not found"), 404)
    return JSONResponse(
        {
            "version": "devserver-0.1.0",
            "authed": False,
            "startOpts": {
                "urls": settings.sdk_urls,
                "autodiscover": settings.discovery,
                "poll": settings.poll,
                "poll_interval": settings.poll_interval,
                "retry_interval": settings.retry_interval,
                "queue_workers": settings.queue_workers,
            },
            "functions": [fn.config for fn in engine.registry.functions.values()],
            "handlers": [],
            "isSingleNodeService": True,
            "isMissingSigningKey": True,
            "isMissingEventKeys": True,
            "features": {},
        }
    )


# ------------------------------------------------------------------------- the app
def create_app(settings: Settings) -> FastAPI:
    """The engine's ASGI app. Raises StartupRefused when the dashboard and /mcp would be served
    on a non-loopback address without a signing key."""
    refuse_public_without_key(settings)
    engine = Engine(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    app = FastAPI(
        title="devserver", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.engine = engine
    app.state.settings = settings
    app.add_exception_handler(AuthFailed, auth_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RecursionError, too_deep)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(doors)
    app.include_router(router_v0)
    app.include_router(router_v1)
    app.include_router(router_v2, prefix="/v2")
    app.include_router(router_v2, prefix="/api/v2")
    # Flow-control introspection (a devserver-only route).
    app.include_router(flow_router, prefix="/v2")
    app.include_router(flow_router, prefix="/api/v2")
    # Dashboard (/) and MCP (/mcp), see MOUNTS.md. With a signing key both require it (a login
    # session for the pages and forms, the Bearer key for /mcp).
    if settings.ui:
        from devserver.dashboard import install_dashboard

        install_dashboard(
            app,
            signing_key=settings.signing_key,
            event_key=settings.event_keys[0] if settings.event_keys else None,
        )
    return ServerKindMiddleware(app, settings.server_kind)  # type: ignore[return-value]
