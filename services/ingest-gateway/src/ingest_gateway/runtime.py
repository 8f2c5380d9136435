"""Building and tearing down the gateway's run-time parts (called from the app's lifespan)."""

from __future__ import annotations

import httpx
from service_kit.db import Database, backend_name

from .context import GatewayContext
from .functions import OutboxPorts
from .outbox import EventPublisher, OutboxRelay
from .outbox_store import OutboxStore, RetryPolicy
from .postgres_fast_path import create_fast_path
from .rate_limit import create_rate_limiter
from .settings import GatewaySettings


def create_gateway_database(settings: GatewaySettings) -> Database:
    """The gateway's database handle.

    SQLite: a single connection. SQLite has one writer at a time; with several pooled connections
    concurrent transactions collide on the file lock and SQLite's busy handler sleeps (up to
    100 ms a turn), while one connection makes them queue in-process, in order, with no sleeping.
    Postgres: a pool of DB_POOL_SIZE (plus as many overflow connections) per process, without
    the pre-ping round trip on every checkout: an email costs one statement on the fast path, so
    the ping would double the round trips. A connection that died in the pool (a database
    restart) fails one request with 5xx, which the provider retries, and the pool replaces it;
    connections are recycled every 5 minutes.
    """
    if backend_name(settings.database_url) == "sqlite":
        return Database(settings.database_url, pool_size=1, max_overflow=0, pool_timeout=30)
    return Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=30,
        pool_pre_ping=False,
        pool_recycle=300,
    )


class GatewayRuntime:
    """Holds the context once started; `outbox_ports` serves the sweep-outbox function."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._context: GatewayContext | None = None
        self._ports: OutboxPorts | None = None

    @property
    def context(self) -> GatewayContext:
        if self._context is None:
            raise RuntimeError("the gateway has not started (lifespan not run)")
        return self._context

    def outbox_ports(self) -> OutboxPorts:
        if self._ports is None:
            raise RuntimeError("the gateway has not started (lifespan not run)")
        return self._ports

    async def start(self, db: Database, http: httpx.AsyncClient) -> GatewayContext:
        settings = self.settings
        policy = RetryPolicy(
            base_seconds=settings.outbox_retry_base_seconds,
            max_seconds=settings.outbox_retry_max_seconds,
            lease_seconds=settings.outbox_lease_seconds,
        )
        store = OutboxStore(db, policy)
        publisher = EventPublisher(
            http,
            base_url=settings.event_api_base_url(),
            event_key=settings.event_key(),
            timeout=settings.outbox_publish_timeout_seconds,
        )
        self._ports = OutboxPorts(store, publisher)
        relay: OutboxRelay | None = None
        if settings.outbox_relay_enabled:
            relay = OutboxRelay(
                store,
                publisher,
                batch_size=settings.outbox_batch_size,
                idle_poll_seconds=settings.outbox_idle_poll_seconds,
                coalesce_seconds=settings.outbox_coalesce_seconds,
            )
            relay.start()
        redis_url = str(settings.redis_url) if settings.redis_url else None
        limiter = create_rate_limiter(
            redis_url,
            settings.rate_limit_requests,
            settings.rate_limit_window_seconds,
            key_prefix=settings.rate_limit_key_prefix,
        )
        unauthenticated = create_rate_limiter(
            redis_url,
            settings.rate_limit_unauthenticated_requests,
            settings.rate_limit_window_seconds,
            key_prefix=settings.rate_limit_key_prefix,
        )
        pg_fast = (
            await create_fast_path(db.url, settings.db_pool_size)
            if db.backend == "postgresql"
            else None
        )
        self._context = GatewayContext(settings, db, limiter, unauthenticated, relay, pg_fast)
        return self._context

    async def stop(self) -> None:
        context, self._context = self._context, None
        if context is None:
            return
        if context.relay is not None:
            await context.relay.stop()
        await context.rate_limiter.close()
        await context.unauthenticated_limiter.close()
        if context.pg_fast is not None:
            await context.pg_fast.close()
