"""What the gateway's routes need at run time, built in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from service_kit.db import Database
from starlette.requests import Request

from .outbox import OutboxRelay
from .postgres_fast_path import PostgresFastPath
from .rate_limit import RateLimiter
from .settings import GatewaySettings


@dataclass(slots=True)
class GatewayContext:
    settings: GatewaySettings
    db: Database
    rate_limiter: RateLimiter  # authenticated senders, one budget per source
    unauthenticated_limiter: RateLimiter  # refused requests, their own budget per source
    relay: OutboxRelay | None
    pg_fast: PostgresFastPath | None = None  # the Postgres fast path (None on SQLite)

    def published_later(self) -> None:
        """Wake the relay after a commit that queued events."""
        if self.relay is not None:
            self.relay.notify()


async def gateway_context(request: Request) -> GatewayContext:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread.
    context: GatewayContext = request.app.state.gateway
    return context
