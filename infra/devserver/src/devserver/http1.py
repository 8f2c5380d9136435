"""A small keep-alive HTTP/1.1 client for calls to SDKs (the executor's hot path).

httpx's connection pool does O(connections) work per request, which dominates the engine's CPU
with ~100 concurrent SDK calls. This client keeps idle connections per origin in a list (LIFO)
and parses just what SDK responses use: Content-Length or chunked bodies, or read-to-close.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 256 * 1024
MAX_IDLE_PER_ORIGIN = 256


class HttpError(Exception):
    """Connection failure, timeout or a malformed response."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool
    request_target: str  # path + query
    host_header: str


@functools.lru_cache(maxsize=4096)
def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"unsupported URL {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if tls else 80
    host_header = parts.hostname if port == default else f"{parts.hostname}:{port}"
    return Target(parts.hostname, port, tls, path, host_header)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http1Client:
    def __init__(self, *, connect_timeout: float = 10.0) -> None:
        self._connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int, bool], list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def close(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()

    async def _connect(self, target: Target) -> _Conn:
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.open_connection(
                    target.host, target.port, ssl=context, limit=MAX_HEADER_BYTES
                )
        except (OSError, TimeoutError) as exc:
            raise HttpError(f"connect to {target.host}:{target.port} failed: {exc!r}") from exc

    async def request(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes, timeout: float
    ) -> Response:
        target = parse_target(url)
        key = (target.host, target.port, target.tls)
        head = [
            f"{method} {target.request_target} HTTP/1.1",
            f"host: {target.host_header}",
            f"content-length: {len(body)}",
        ]
        head.extend(f"{name}: {value}" for name, value in headers.items())
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            async with asyncio.timeout(timeout):
                idle = self._idle.get(key)
                while idle:
                    conn = idle.pop()
                    if conn[0].at_eof() or conn[1].is_closing():
                        conn[1].close()
                        continue
                    try:
                        return await self._exchange(key, conn, payload, method)
                    except _StaleConnection:
                        continue  # the server closed it while idle: use another one
                conn = await self._connect(target)
                try:
                    return await self._exchange(key, conn, payload, method)
                except _StaleConnection as exc:
                    raise HttpError("connection closed before a response") from exc
        except TimeoutError as exc:
            raise HttpError(f"request to {url} timed out after {timeout}s") from exc

    async def _exchange(
        self, key: tuple[str, int, bool], conn: _Conn, payload: bytes, method: str
    ) -> Response:
        reader, writer = conn
        try:
            writer.write(payload)
            await writer.drain()
            try:
                raw_head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _StaleConnection from exc
                raise
            lines = raw_head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                body = b""
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                body = await _read_chunked(reader)
            elif "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            else:
                body = await reader.read()
                headers["connection"] = "close"
        except _StaleConnection:
            writer.close()
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise HttpError(f"bad response: {exc!r}") from exc
        except BaseException:
            writer.close()
            raise
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        idle = self._idle.setdefault(key, [])
        if keep and len(idle) < MAX_IDLE_PER_ORIGIN:
            idle.append(conn)
        else:
            with contextlib.suppress(Exception):
                writer.close()
        return Response(status, headers, body)


class _StaleConnection(Exception):
    pass


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # trailers, then the final CRLF
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
