"""The gateway's FastAPI app: webhooks, reviewer decisions, admin API, and its Inngest app
(`ingest-gateway`, serving the `sweep-outbox` cron function) at /api/inngest."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from service_kit.app import create_service_app
from service_kit.inngest_client import create_inngest_client
from starlette.requests import Request

from . import reviewer, webhooks
from .functions import GatewayDeps, create_functions
from .http_body import GatewayHTTPError
from .metrics import REJECTIONS
from .runtime import GatewayRuntime, create_gateway_database
from .settings import GatewaySettings

APP_ID = "ingest-gateway"
INNGEST_SERVE_PATH = "/api/inngest"


def _source_of(path: str) -> str:
    """A low-cardinality label for a request path (no tokens or ids)."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["webhooks"] and len(parts) > 1:
        return parts[1]  # postmark, stripe, generic
    if parts[:1] == ["decisions"]:
        return "decisions"
    if parts[:2] == ["api", "tickets"]:
        return "admin"
    return "other"


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayHTTPError)
    REJECTIONS.labels(_source_of(request.url.path), str(exc.status_code)).inc()
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    client = create_inngest_client(APP_ID, settings)
    runtime = GatewayRuntime(settings)
    functions = create_functions(client, GatewayDeps(settings, runtime.outbox_ports))

    async def start(app: FastAPI) -> None:
        app.state.gateway = await runtime.start(app.state.db, app.state.http)
        # The ~140k objects built so far (modules, routes, schemas, pools) live as long as the
        # process: keep them out of the collector's full passes. A full pass over them took
        # 86 ms here, a stall of every request in flight (the p99); after the freeze, ~0.
        gc.freeze()

    async def stop(app: FastAPI) -> None:
        await runtime.stop()

    app = create_service_app(
        settings,
        inngest_client=client,
        functions=functions,
        title="Nerve ingest gateway",
        routers=(webhooks.router, reviewer.router),
        on_startup=(start,),
        on_shutdown=(stop,),
        database=create_gateway_database(settings),
        # The rest of a decision link is its signed token: never in a log line.
        secret_path_prefixes=("/decisions/",),
    )
    app.add_exception_handler(GatewayHTTPError, _gateway_error)
    # /api/inngest speaks the engine's protocol (documented by Inngest, signed in production); it
    # is not part of the gateway's own API, so it stays out of the OpenAPI document.
    for route in app.routes:
        if getattr(route, "path", None) == INNGEST_SERVE_PATH:
            route.include_in_schema = False  # type: ignore[attr-defined]
    app.openapi_schema = None
    return app
