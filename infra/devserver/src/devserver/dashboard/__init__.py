"""The devserver dashboard (served at `/`) and the mount of the MCP endpoint (`/mcp`).

`install_dashboard(app, ...)` is the one call the devserver's app factory makes (see
infra/devserver/MOUNTS.md). Pages and tools read the engine only through its public REST API,
in process (`httpx.ASGITransport` on the same app), so they keep working as the engine evolves
and also against a real Inngest server (`standalone_app(engine_url)`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from engine_client import AsyncEngineClient
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from devserver.dashboard.engine_extras import pending_lookup_for
from devserver.dashboard.mcp_mount import LazyMcpEndpoint
from devserver.dashboard.notifications import NotificationReader
from devserver.dashboard.settings import DashboardSettings

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["DashboardSettings", "install_dashboard", "standalone_app"]


def install_dashboard(
    app: FastAPI,
    *,
    signing_key: str | None = None,
    event_key: str | None = None,
    settings: DashboardSettings | None = None,
    client: AsyncEngineClient | None = None,
    mcp: bool = True,
) -> None:
    """Add the dashboard pages, actions, static files and `/mcp` to `app`.

    With `signing_key` the engine client authenticates with it, and the dashboard requires it
    too: pages and actions need a login session (see session.py), `/mcp` the Bearer key.

    `/mcp` starts its MCP session manager on first use (see mcp_mount); the app's lifespan is
    wrapped so it is stopped, and the notifications reader closed, at shutdown.
    """
    from devserver.dashboard import actions, pages, session

    settings = settings or DashboardSettings.from_env()
    engine_client = client or AsyncEngineClient.in_process(
        app, signing_key=signing_key, event_key=event_key
    )
    app.state.dashboard_settings = settings
    app.state.dashboard_client = engine_client
    app.state.dashboard_auth_key = signing_key  # None: the dashboard and /mcp are open
    app.state.dashboard_notifications = (
        NotificationReader(settings.nerve_database_url) if settings.nerve_database_url else None
    )
    app.add_exception_handler(session.LoginRequired, _login_redirect)
    app.include_router(session.router)
    app.include_router(actions.router, dependencies=[Depends(session.guard_form_post)])
    app.include_router(pages.router, dependencies=[Depends(session.guard_page)])
    app.mount("/static/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard-static")

    mcp_endpoint: LazyMcpEndpoint | None = None
    if mcp:
        mcp_endpoint = LazyMcpEndpoint(
            engine_client, settings, pending_lookup_for(app.state), signing_key=signing_key
        )
        app.router.routes.append(Route("/mcp", endpoint=mcp_endpoint))
    app.state.mcp_endpoint = mcp_endpoint

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
        async with inner(asgi_app) as state:
            try:
                yield state
            finally:
                if mcp_endpoint is not None:
                    await mcp_endpoint.aclose()
                if app.state.dashboard_notifications is not None:
                    await app.state.dashboard_notifications.aclose()
                if client is None:  # the in-process client is ours to close
                    await engine_client.aclose()

    app.router.lifespan_context = lifespan


async def _login_redirect(_request: Request, exc: Exception) -> Response:
    from devserver.dashboard.session import LoginRequired, login_redirect

    if not isinstance(exc, LoginRequired):
        raise exc
    return login_redirect(exc)


def standalone_app(
    engine_url: str,
    *,
    signing_key: str | None = None,
    event_key: str | None = None,
    settings: DashboardSettings | None = None,
) -> FastAPI:
    """The dashboard + MCP as their own app, pointed at any engine URL (e.g. a real Inngest)."""
    app = FastAPI(title="Nerve dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    client = AsyncEngineClient(engine_url, signing_key=signing_key, event_key=event_key)
    install_dashboard(app, signing_key=signing_key, settings=settings, client=client)
    return app
