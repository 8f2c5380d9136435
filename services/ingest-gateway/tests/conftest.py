"""Fixtures for the gateway tests (the shared settings factory and secrets: `gateway_helpers.py`).

`make_gateway` / `gateway` start the app with its lifespan against a recording Event API;
`offline_gateway` starts it with publishing off (nothing listens at the Event API URL, the relay
is disabled) for tests whose subject is what a request does before publishing.

`RecordingEventAPI` is a local HTTP server speaking the Inngest Event API (`POST /e/{key}`, an
array of events, `{"ids": [...], "status": 200}`) that records what it receives. It is used where
the engine is not the subject. Its socket is bound up front but only listens once `start()` is
called, so before that the address refuses connections: an engine that is really unreachable.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from asgi_lifespan import LifespanManager

# The engine fixture, re-exported: `pytest_plugins` is refused in a non-root conftest when the
# whole repository is collected.
from devserver.testing import inngest_engine  # noqa: F401
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ingest_gateway.app import create_app
from service_kit.ids import new_ulid

sys.path.insert(0, os.path.dirname(__file__))  # importlib mode: make the siblings importable
from gateway_helpers import SECRETS, GatewayFactory, GatewaySecrets, gateway_settings


@dataclass
class RecordingEventAPI:
    """Every event received, in order; `status` lets a test make the API answer an error."""

    base_url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    status: int = 200
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _socket: socket.socket | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def bind(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/e/{key}")
        async def receive(key: str, request: Request) -> JSONResponse:
            body = await request.json()
            batch = body if isinstance(body, list) else [body]
            with self._lock:
                self.requests += 1
                if self.status != 200:
                    return JSONResponse(
                        {"status": self.status, "error": "scripted failure"},
                        status_code=self.status,
                    )
                self.events.extend(batch)
            return JSONResponse({"ids": [new_ulid() for _ in batch], "status": 200})

        return app

    def start(self) -> None:
        """Begin listening on the bound socket."""
        assert self._socket is not None, "bind() first"
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        sock = self._socket
        server = self._server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("recording Event API did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def ids(self) -> list[str]:
        return [event["id"] for event in self.received()]


@pytest.fixture
def event_api() -> Iterator[RecordingEventAPI]:
    """A listening recording Event API."""
    api = RecordingEventAPI()
    api.bind()
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def unreachable_event_api() -> Iterator[RecordingEventAPI]:
    """Bound but not listening (connections refused) until the test calls `start()`."""
    api = RecordingEventAPI()
    api.bind()
    try:
        yield api
    finally:
        api.stop()


async def _wait_until(condition: Any, *, timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
def wait_until() -> Any:
    """`await wait_until(predicate, timeout=...)`: poll an (async or sync) predicate until true;
    fail with a clear message on timeout."""
    return _wait_until


async def _waiting_request(database_url: str, kind: str, *, status: str | None = None) -> str:
    """A refund request (`rfr_...`, awaiting approval) or an escalation (`esc_...`, pending) of
    a fresh customer, as the support worker leaves them before a reviewer decides; `status`
    overrides the row's status (e.g. `timed_out`). Returns its id."""
    from service_kit.db import Database
    from service_kit.ids import new_id
    from service_kit.models import Customer, Escalation, Order, RefundRequest, Ticket

    db = Database(database_url)
    customer_id, ticket_id = new_id("cus"), new_id("tkt")
    try:
        async with db.transaction() as session:
            session.add(Customer(id=customer_id, email=f"{customer_id}@example.com", name="Test"))
            await session.flush()
            session.add(Ticket(id=ticket_id, customer_id=customer_id, subject="help"))
            await session.flush()
            if kind == "refund":
                order_id, request_id = new_id("ord"), new_id("rfr")
                session.add(
                    Order(id=order_id, customer_id=customer_id, amount_cents=9_000, currency="usd")
                )
                await session.flush()
                session.add(
                    RefundRequest(
                        id=request_id,
                        idempotency_key=f"refund-test-{request_id}",
                        customer_id=customer_id,
                        order_id=order_id,
                        ticket_id=ticket_id,
                        amount_cents=9_000,
                        status=status or "awaiting_approval",
                        risk_reasons=[],
                    )
                )
            else:
                request_id = new_id("esc")
                session.add(
                    Escalation(
                        id=request_id,
                        idempotency_key=f"escalation-test-{request_id}",
                        customer_id=customer_id,
                        ticket_id=ticket_id,
                        reason="angry",
                        draft_text="We are sorry.",
                        status=status or "pending",
                    )
                )
    finally:
        await db.dispose()
    return request_id


@pytest.fixture
def waiting_request() -> Any:
    """`await waiting_request(database_url, "refund" | "escalation", status=None)`: the id of a
    request row waiting for a reviewer (see `_waiting_request`)."""
    return _waiting_request


# Fast retries and a small body limit, so the relay and the 413 path are quick to observe.
HTTP_TEST_SETTINGS: dict[str, Any] = {
    "outbox_retry_base_seconds": 0.05,
    "outbox_retry_max_seconds": 0.3,
    "outbox_idle_poll_seconds": 0.5,
    "max_body_bytes": 64 * 1024,
}


@pytest_asyncio.fixture
async def make_gateway(
    database_url: str, event_api: RecordingEventAPI
) -> AsyncIterator[GatewayFactory]:
    """Start gateway apps (lifespan included) on the session database, publishing to the
    recording Event API: `await make_gateway(**settings_overrides)` returns a client.

    `secrets=` configures other credentials; `raise_app_exceptions=False` lets an unhandled
    error reach the client as the 500 a sender sees."""
    stack: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def make(
        *,
        secrets: GatewaySecrets = SECRETS,
        raise_app_exceptions: bool = True,
        **overrides: Any,
    ) -> httpx.AsyncClient:
        settings = gateway_settings(
            database_url,
            event_api_url=event_api.base_url,
            secrets=secrets,
            **{**HTTP_TEST_SETTINGS, **overrides},
        )
        manager = LifespanManager(create_app(settings), startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
        stack.append((manager, client))
        return client

    yield make
    for manager, client in reversed(stack):
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def gateway(make_gateway: GatewayFactory) -> httpx.AsyncClient:
    """A gateway publishing to the recording Event API (`event_api`)."""
    return await make_gateway()


@pytest_asyncio.fixture
async def offline_gateway(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway that publishes nothing (no Event API, relay off) and rate-limits nobody."""
    settings = gateway_settings(
        database_url, rate_limit_requests=100_000, outbox_relay_enabled=False
    )
    async with LifespanManager(create_app(settings)) as manager:
        # raise_app_exceptions=False: an unhandled error must show up as the 500 a sender sees.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield client
