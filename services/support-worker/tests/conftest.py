"""Fixtures for the support-worker tests.

A local OpenAI-compatible HTTP server for tests: Chat Completions (with tool calls) and
Embeddings, scripted per test. The real `openai` client and the Agents SDK talk to it over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class FakeOpenAI:
    """Scripted replies (popped in order) and every request received."""

    base_url: str = ""
    chat_script: list[dict[str, Any]] = field(default_factory=list)
    chat_requests: list[dict[str, Any]] = field(default_factory=list)
    embedding_requests: list[dict[str, Any]] = field(default_factory=list)
    embedding_dimensions: int = 8

    def script_tool_call(self, name: str, arguments: dict[str, Any], call_id: str) -> None:
        self.chat_script.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments)},
                    }
                ],
            }
        )

    fail_status: int | None = None  # when set, every chat request fails with this status

    def script_reply(self, text: str) -> None:
        self.chat_script.append({"role": "assistant", "content": text})


def fake_embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i] / 255.0 for i in range(dimensions)]


def build_app(state: FakeOpenAI) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        state.chat_requests.append(body)
        if state.fail_status is not None:
            return JSONResponse(
                {"error": {"message": "simulated model outage", "type": "invalid_request_error"}},
                status_code=state.fail_status,
            )
        if not state.chat_script:
            return JSONResponse({"error": {"message": "no scripted reply left"}}, status_code=500)
        message = state.chat_script.pop(0)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(state.chat_requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        state.embedding_requests.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse(
            {
                "object": "list",
                "model": body.get("model", "fake"),
                "data": [
                    {
                        "object": "embedding",
                        "index": index,
                        "embedding": fake_embedding(text, state.embedding_dimensions),
                    }
                    for index, text in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    return app


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free port (bound to port 0); yields "http://127.0.0.1:PORT"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("local fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@contextmanager
def serve_fake_openai() -> Iterator[FakeOpenAI]:
    """Serve a fresh scripted OpenAI-compatible fake for the duration of the block."""
    state = FakeOpenAI()
    with serve_asgi(build_app(state)) as origin:
        state.base_url = f"{origin}/v1"
        yield state


@dataclass
class FakeStripe:
    """A local Stripe API fake: POST /v1/refunds, honouring Idempotency-Key like Stripe does."""

    origin: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    decline: bool = False


def build_stripe_app(state: FakeStripe) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/refunds")
    async def create_refund(request: Request) -> JSONResponse:
        form = dict(await request.form())
        key = request.headers.get("idempotency-key", "")
        state.requests.append({"form": form, "idempotency_key": key})
        if state.decline:
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "Charge already refunded"}},
                status_code=400,
            )
        if key not in state.refunds:
            state.refunds[key] = {
                "id": f"re_fake_{len(state.refunds) + 1}",
                "object": "refund",
                "amount": int(str(form["amount"])),
                "charge": form["charge"],
                "currency": "usd",
                "status": "succeeded",
            }
        return JSONResponse(state.refunds[key])

    return app


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    state = FakeStripe()
    with serve_asgi(build_stripe_app(state)) as origin:
        state.origin = origin
        yield state


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as fake:
        yield fake


# -- harness for running the functions through inngest.experimental.mocked ---------------------

import asyncio  # noqa: E402
import dataclasses  # noqa: E402
from collections.abc import Coroutine  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import TypeVar  # noqa: E402

import inngest  # noqa: E402
from inngest.experimental import mocked  # noqa: E402
from service_kit.db import Database  # noqa: E402
from service_kit.ids import new_id  # noqa: E402
from service_kit.models import Customer, Message, Order, Ticket  # noqa: E402
from shared_events import CustomerEmailReceived  # noqa: E402
from support_worker.deps import FlowConfig, SupportWorkerDeps  # noqa: E402
from support_worker.embeddings import LocalHashEmbedder  # noqa: E402
from support_worker.functions import APP_ID, create_functions  # noqa: E402
from support_worker.payments import LocalLedgerPayments  # noqa: E402

T = TypeVar("T")

from devserver.testing import EngineHandle, session_engine  # noqa: E402


@pytest.fixture(scope="session")
def inngest_engine() -> Iterator[EngineHandle]:
    """devserver.testing's engine, allowed a slow start (a loaded 2-core CI box needs > 30 s);
    defined here because `pytest_plugins` is refused in a non-root conftest."""
    with session_engine(health_timeout=120.0) as engine:
        yield engine


class RecordingClient(mocked.Inngest):
    """The mocked client, remembering every event the functions sent."""

    def __init__(self) -> None:
        super().__init__(app_id=APP_ID, is_production=False)
        self.sent: list[inngest.Event] = []

    async def send(
        self, events: inngest.Event | list[inngest.Event], *, skip_middleware: bool = False
    ) -> list[str]:
        batch = events if isinstance(events, list) else [events]
        self.sent.extend(batch)
        return [event.id or "" for event in batch]

    def sent_named(self, name: str) -> list[inngest.Event]:
        return [event for event in self.sent if event.name == name]


@dataclass
class Conversation:
    customer_id: str
    ticket_id: str
    message_id: str
    order_ids: list[str]
    tier: str

    def event(self) -> inngest.Event:
        data = CustomerEmailReceived(
            message_id=self.message_id,
            provider_message_id=f"pm-{self.message_id}",
            customer_id=self.customer_id,
            customer_tier=self.tier,
            ticket_id=self.ticket_id,
            received_at=datetime.now(UTC),
        )
        return data.to_event(id=f"postmark-{self.message_id}")


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    db: Database
    deps: SupportWorkerDeps
    client: RecordingClient
    functions: dict[str, inngest.Function[Any]]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def replace_deps(self, **changes: Any) -> None:
        """Swap dependencies (`model=...`, `payments=...`): the deps are frozen, so the functions
        are built again with the new ones, as the app would build them."""
        self.deps = dataclasses.replace(self.deps, **changes)
        self.functions = {fn.local_id: fn for fn in create_functions(self.client, self.deps)}

    def trigger(
        self,
        fn_id: str,
        events: inngest.Event | list[inngest.Event],
        stubs: dict[str, object] | None = None,
    ) -> Any:
        return mocked.trigger(self.functions[fn_id], events, self.client, step_stubs=stubs or {})

    def conversation(
        self,
        *,
        subject: str,
        body: str,
        tier: str = "pro",
        order_amounts: tuple[int, ...] = (2_000, 20_000),
    ) -> Conversation:
        return self.run(create_conversation(self.db, subject, body, tier, order_amounts))


async def create_conversation(
    db: Database, subject: str, body: str, tier: str, order_amounts: tuple[int, ...]
) -> Conversation:
    """A fresh customer (unique ids), orders, a ticket and the inbound message, as the gateway
    would have stored them."""
    customer_id = new_id("cust")
    ticket_id = new_id("tkt")
    message_id = new_id("msg")
    order_ids = [new_id("ord") for _ in order_amounts]
    async with db.transaction() as session:
        session.add(
            Customer(
                id=customer_id, email=f"{customer_id}@example.com", name="Test Person", tier=tier
            )
        )
        await session.flush()
        for order_id, amount in zip(order_ids, order_amounts, strict=True):
            session.add(
                Order(
                    id=order_id,
                    customer_id=customer_id,
                    amount_cents=amount,
                    currency="usd",
                    stripe_charge_id=f"ch_{order_id}",
                )
            )
        session.add(Ticket(id=ticket_id, customer_id=customer_id, subject=subject))
        await session.flush()
        session.add(
            Message(
                id=message_id,
                ticket_id=ticket_id,
                customer_id=customer_id,
                direction="inbound",
                provider_message_id=f"pm-{message_id}",
                subject=subject,
                body_text=body.replace("{order}", order_ids[-1]),
                received_at=datetime.now(UTC),
            )
        )
    return Conversation(customer_id, ticket_id, message_id, order_ids, tier)


def fast_flow() -> FlowConfig:
    return FlowConfig(refund_auto_approve_max_cents=5_000)


@contextmanager
def open_harness(database_url: str) -> Iterator[Harness]:
    # mocked.trigger drives the async functions on the thread's current event loop, so the test
    # is sync and owns that loop; the database engine lives on it too.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    db = Database(database_url)
    deps = SupportWorkerDeps(
        db=db, flow=fast_flow(), payments=LocalLedgerPayments(), embedder=LocalHashEmbedder()
    )
    client = RecordingClient()
    functions = {fn.local_id: fn for fn in create_functions(client, deps)}
    try:
        yield Harness(loop, db, deps, client, functions)
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def harness(database_url: str) -> Iterator[Harness]:
    """Functions under mocked on the shared migrated+seeded database (isolate by unique ids)."""
    with open_harness(database_url) as opened:
        yield opened


@pytest.fixture
def fresh_harness(fresh_database_url: str) -> Iterator[Harness]:
    """Functions under mocked on a pristine seeded database (for flows reading every customer)."""
    with open_harness(fresh_database_url) as opened:
        yield opened


@pytest.fixture
def make_conversation() -> Any:
    """`await make_conversation(db, subject, body, tier, order_amounts)` (async tests)."""
    return create_conversation
