"""The executor's HTTP/1.1 client against a raw asyncio server."""

from __future__ import annotations

import asyncio

import pytest
from devserver.http1 import Http1Client, HttpError


async def start_server(responses: list[bytes], close_after_first: bool = False):
    seen: list[bytes] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(
                next(
                    line for line in head.split(b"\r\n") if line.startswith(b"content-length")
                ).split(b":")[1]
            )
            seen.append(head + await reader.readexactly(length))
            writer.write(responses[min(len(seen) - 1, len(responses) - 1)])
            await writer.drain()
            if close_after_first:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/api/inngest?fnId=f&stepId=step", seen, connections


async def test_content_length_chunked_and_keep_alive() -> None:
    fixed = b"HTTP/1.1 206 Partial\r\ncontent-length: 2\r\nX-Inngest-SDK: py\r\n\r\n[]"
    chunked = (
        b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
        b'1\r\n \r\n6\r\n{"a":1\r\n1\r\n}\r\n0\r\n\r\n'
    )
    server, url, seen, connections = await start_server([fixed, chunked])
    client = Http1Client()
    try:
        first = await client.request("POST", url, headers={"x-a": "1"}, body=b"{}", timeout=5)
        second = await client.request("POST", url, headers={}, body=b"[1]", timeout=5)
    finally:
        await client.close()
        server.close()
    assert (first.status, first.body, first.headers["x-inngest-sdk"]) == (206, b"[]", "py")
    assert (second.status, second.body) == (201, b' {"a":1}')
    assert len(connections) == 1  # the connection was reused
    assert seen[0].startswith(b"POST /api/inngest?fnId=f&stepId=step HTTP/1.1\r\n")
    assert b"x-a: 1" in seen[0] and seen[1].endswith(b"[1]")


async def test_stale_idle_connection_is_replaced() -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnull"
    server, url, _seen, connections = await start_server([ok], close_after_first=True)
    client = Http1Client()
    try:
        await client.request("POST", url, headers={}, body=b"", timeout=5)
        await asyncio.sleep(0.05)  # server closed the kept-alive connection
        again = await client.request("POST", url, headers={}, body=b"", timeout=5)
    finally:
        await client.close()
        server.close()
    assert again.body == b"null"
    assert len(connections) == 2


async def test_connection_refused_is_an_http_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(HttpError):
        await Http1Client().request(
            "POST", f"http://127.0.0.1:{port}/", headers={}, body=b"", timeout=5
        )
