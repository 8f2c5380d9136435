"""`/mcp` mounted lazily: the `mcp` package (seconds of import time on a busy machine) is only
imported, and its session manager only started, on the first MCP request, so devserver start-up
does not pay for it. The session manager runs in its own task (its anyio task group must be
entered and left by the same task) and is stopped when the app shuts down.

With a signing key every MCP request needs `Authorization: Bearer <signing key>` (plain or
hashed, as the REST API): the tools send events, invoke, cancel and rerun.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine_client import AsyncEngineClient
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from devserver.auth import authentication_failed, signing_key_ok
from devserver.dashboard.engine_extras import PendingLookup
from devserver.dashboard.settings import DashboardSettings


class LazyMcpEndpoint:
    """ASGI endpoint for `/mcp` that builds the MCP server on first use."""

    def __init__(
        self,
        client: AsyncEngineClient,
        settings: DashboardSettings,
        pending_lookup: PendingLookup | None = None,
        *,
        signing_key: str | None = None,
    ) -> None:
        self.client = client
        self.signing_key = signing_key
        self.settings = settings
        self.pending_lookup = pending_lookup
        self._handler: Any = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.server: Any = None

    async def _start(self) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp

        from devserver.mcp_server import build_mcp, transport_security

        server = build_mcp(self.client, self.settings, self.pending_lookup)
        server.streamable_http_app(
            json_response=True, stateless_http=True, transport_security=transport_security()
        )
        manager = server.session_manager
        started = asyncio.Event()
        failed: list[BaseException] = []

        async def run_manager() -> None:
            try:
                async with manager.run():
                    started.set()
                    await self._stop.wait()
            except BaseException as exc:  # surfaced to the first request below
                failed.append(exc)
                started.set()
                raise

        self._task = asyncio.create_task(run_manager(), name="mcp-session-manager")
        await started.wait()
        if failed:
            raise RuntimeError(f"MCP session manager failed to start: {failed[0]!r}")
        self.server = server
        self._handler = StreamableHTTPASGIApp(manager)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not signing_key_ok(Request(scope), self.signing_key):
            await authentication_failed()(scope, receive, send)
            return
        if self._handler is None:
            async with self._lock:
                if self._handler is None:
                    await self._start()
        await self._handler(scope, receive, send)

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            self._task = None
