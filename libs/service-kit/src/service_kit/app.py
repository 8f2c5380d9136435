"""The FastAPI app factory every service uses.

`create_service_app` gives a service: a lifespan-managed `Database` (`app.state.db`) and shared
`httpx.AsyncClient` (`app.state.http`), the Inngest serve endpoint at /api/inngest, /healthz
(liveness), /readyz (`SELECT 1` on the database, 503 when it fails), /metrics (prometheus-client),
structlog JSON logs, and one log line plus metrics per HTTP request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import inngest
import inngest.fast_api
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .db import Database
from .logs import configure_logging, get_logger
from .redact import redact_path, redact_query
from .settings import ServiceSettings

Hook = Callable[[FastAPI], Awaitable[None]]
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class HttpMetrics:
    """Per-app HTTP metrics in the app's own registry (so several apps can live in one process,
    e.g. in tests)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "nerve_http_requests_total",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nerve_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.service = service

        # `labels()` takes a lock and builds the label tuple on every call; the children are
        # cached per (method, route, status), a small set (route templates, not paths).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


_INTERNAL_ERROR_BODY = json.dumps({"detail": "internal server error"}).encode()


class RequestLogMiddleware:
    """One log line ("http request": method, path, query, status, duration_ms; not for the
    health and metrics paths) and the HTTP metrics per request. The one place requests are
    logged, so the one place secrets are kept out: the path and query pass through
    `service_kit.redact` (no decision token, no `?token=`), headers are never logged.

    An exception that escapes the app is logged here with its traceback and answered 500
    (`{"detail": "internal server error"}`) when no response has started.

    Plain ASGI on purpose: Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) runs the
    app in a task group with memory streams and wraps the request body's `receive`, several times
    the cost of the rest of a small request. This only watches the response start for the status.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        log: Any,
        secret_path_prefixes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log
        self.secret_path_prefixes = tuple(secret_path_prefixes)
        self.stdlib_logger = logging.getLogger("service_kit.app")

    def _logged_path(self, scope: Scope) -> str:
        route = scope.get("route")
        template = getattr(route, "path", None)
        return redact_path(
            scope["path"],
            template=template if isinstance(template, str) else None,
            params=scope.get("path_params"),
            secret_prefixes=self.secret_path_prefixes,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_status(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception:
            status = 500
            self.log.exception(
                "http request failed",
                method=scope["method"],
                path=self._logged_path(scope),
            )
            if response_started:
                raise  # too late for a clean answer: the server closes the connection
            await _send_internal_error(send)
        finally:
            elapsed = time.perf_counter() - started
            method: str = scope["method"]
            # The router stores the matched route in this same scope dict.
            self.metrics.observe(method, _route_template(scope), status, elapsed)
            if scope["path"] not in QUIET_PATHS and self.stdlib_logger.isEnabledFor(logging.INFO):
                fields: dict[str, Any] = {
                    "method": method,
                    "path": self._logged_path(scope),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                }
                query = scope.get("query_string")
                if query:
                    fields["query"] = redact_query(query)
                self.log.info("http request", **fields)


async def _send_internal_error(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})


def create_service_app(
    settings: ServiceSettings,
    *,
    inngest_client: inngest.Inngest,
    functions: Sequence[inngest.Function[Any]],
    title: str,
    routers: Sequence[APIRouter] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    database: Database | None = None,
    http: httpx.AsyncClient | None = None,
    configure_logs: bool = True,
    secret_path_prefixes: Sequence[str] = (),
) -> FastAPI:
    """Build a service's FastAPI app (see the module docstring).

    `database` / `http`: pass them when the Inngest functions need them at construction time
    (`create_functions(client, deps)`); the app owns them either way and closes them at shutdown.
    When omitted they are created at startup from `settings`.
    `secret_path_prefixes`: paths whose rest is a credential (e.g. "/decisions/"), never logged
    even when no route matches.
    """
    if configure_logs:
        configure_logging(
            settings.log_level, json=settings.log_json, service_name=settings.service_name
        )
    log = get_logger("service_kit.app", service=settings.service_name)
    metrics = HttpMetrics(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = database or Database(settings.database_url)
        app.state.http = (
            http
            if http is not None and not http.is_closed
            else httpx.AsyncClient(timeout=settings.http_timeout_seconds)
        )
        log.info("service starting", database=app.state.db.backend, port=settings.port)
        try:
            for hook in on_startup:
                await hook(app)
            yield
        finally:
            for hook in on_shutdown:
                try:
                    await hook(app)
                except Exception:
                    log.exception("shutdown hook failed")
            await app.state.http.aclose()
            await app.state.db.dispose()
            log.info("service stopped")

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.inngest_client = inngest_client
    # What this app serves, for introspection (docs/architecture.md is generated from it).
    app.state.inngest_functions = tuple(functions)

    app.add_middleware(
        RequestLogMiddleware,
        metrics=metrics,
        log=log,
        secret_path_prefixes=secret_path_prefixes,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        db: Database = request.app.state.db
        if await db.ping():
            return JSONResponse({"status": "ready", "database": "ok"})
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body = generate_latest(metrics.registry) + generate_latest(REGISTRY)
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)

    inngest.fast_api.serve(
        app,
        inngest_client,
        list(functions),
        serve_origin=settings.inngest_serve_origin,
    )
    return app


# Typed FastAPI dependencies ---------------------------------------------------------------------


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; the handler commits what it wants kept."""
    database: Database = request.app.state.db
    async with database.session() as session:
        yield session


def get_http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http
    return client


def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


Db = Annotated[Database, Depends(get_database)]
DbSession = Annotated[AsyncSession, Depends(get_session)]
Http = Annotated[httpx.AsyncClient, Depends(get_http)]
