"""Local stand-ins the support-worker tests talk to over real HTTP: an OpenAI-compatible server
(Chat Completions with tool calls, and Embeddings, scripted per test) and a Stripe refunds API
that honours Idempotency-Key. The real `openai` client, the Agents SDK and `StripePayments` talk
to them unchanged."""

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
