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
def serve_fake_openai() -> Iterator[FakeOpenAI]:
    """Serve a fresh fake on a free port (bound to port 0) for the duration of the block."""
    state = FakeOpenAI()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.01)
    state.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as fake:
        yield fake
