"""Local stand-ins for the outer edge, speaking the real protocols (for tests).

- `FakeSlackWebhook`: an HTTP server accepting Slack incoming-webhook POSTs on any path,
  answering `200 ok` (or scripted failures), recording every JSON body it accepted.
- `SmtpSink`: an aiosmtpd SMTP server recording every message (or refusing, when scripted).

Both bind 127.0.0.1 on a free port (port 0) and run in a background thread, so they work from
sync and async tests alike. Use them as context managers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, Envelope, Session


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# -- Slack ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackPost:
    path: str
    body: dict[str, Any]
    # time.monotonic() when the fake accepted it (to observe throttling)
    received_at: float = 0.0

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class _SlackState:
    posts: list[SlackPost] = field(default_factory=list)
    # every request, including the refused ones: (path, status)
    attempts: list[tuple[str, int]] = field(default_factory=list)
    scripted: deque[tuple[int, str, dict[str, str]]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeSlackWebhook:
    """`url(name)` gives a webhook URL; `posts` the accepted messages, in arrival order."""

    def __init__(self) -> None:
        self._state = _SlackState()
        state = self._state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                with state.lock:
                    status, reply, headers = (
                        state.scripted.popleft() if state.scripted else (200, "ok", {})
                    )
                    if status == 200:
                        try:
                            body = json.loads(raw)
                        except ValueError:
                            status, reply, body = 400, "invalid_payload", None
                        if not isinstance(body, dict) or not body.get("text"):
                            status, reply = 400, "invalid_payload"
                        else:
                            state.posts.append(
                                SlackPost(path=self.path, body=body, received_at=time.monotonic())
                            )
                    state.attempts.append((self.path, status))
                encoded = reply.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(encoded)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, name: str = "support") -> str:
        return f"{self.base_url}/services/T000/{name}/fake"

    def fail_next(
        self, status: int, reply: str = "", *, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` requests with `status` (e.g. 500, 404 `no_service`, 429)."""
        with self._state.lock:
            for _ in range(times):
                self._state.scripted.append((status, reply or f"error {status}", headers or {}))

    @property
    def posts(self) -> list[SlackPost]:
        with self._state.lock:
            return list(self._state.posts)

    @property
    def attempts(self) -> list[tuple[str, int]]:
        with self._state.lock:
            return list(self._state.attempts)

    def posts_to(self, name: str) -> list[SlackPost]:
        return [post for post in self.posts if post.path == f"/services/T000/{name}/fake"]

    def wait_for_posts(self, count: int, timeout: float = 10.0) -> list[SlackPost]:
        _wait(lambda: len(self.posts) >= count, timeout, f"{count} Slack post(s)")
        return self.posts

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- SMTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedEmail:
    sender: str
    recipients: tuple[str, ...]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        payload = self.message.get_payload(decode=True)
        return payload.decode() if isinstance(payload, bytes) else str(payload)


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._sink._lock:
            if self._sink._scripted:
                return self._sink._scripted.popleft()
            content = envelope.content if isinstance(envelope.content, bytes) else b""
            self._sink._messages.append(
                ReceivedEmail(
                    sender=str(envelope.mail_from),
                    recipients=tuple(envelope.rcpt_tos),
                    message=message_from_bytes(content),
                )
            )
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server recording messages; `fail_next("451 4.3.0 try later")` scripts refusals."""

    def __init__(self) -> None:
        self._messages: list[ReceivedEmail] = []
        self._scripted: deque[str] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def fail_next(self, reply: str, *, times: int = 1) -> None:
        with self._lock:
            self._scripted.extend([reply] * times)

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._messages)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[ReceivedEmail]:
        _wait(lambda: len(self.messages) >= count, timeout, f"{count} email(s)")
        return self.messages

    def start(self) -> Self:
        self._thread.start()
        handler = _SinkHandler(self)

        async def serve() -> asyncio.Server:
            return await self._loop.create_server(
                lambda: SMTP(handler, hostname="nerve-smtp-sink"), self.host, 0
            )

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
