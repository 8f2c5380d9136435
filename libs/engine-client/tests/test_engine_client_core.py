"""The async core, the blocking facade, and the helpers the engine's users share.

The answers the client parses are the real server's (test_engine_client_recorded.py); these tests
cover what those cannot: the in-process transport, the facade's event loop, the devserver extras,
the duration syntax, the signing key and the port helpers.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from engine_client import (
    AsyncEngineClient,
    EngineClient,
    EngineError,
    RunStatus,
    free_port_block,
    hashed_signing_key,
    parse_duration,
    parse_duration_ms,
    parse_duration_ns,
    port_is_free,
)
from engine_client.models import status_filter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RUNS = [{"id": f"run-{n}", "status": "COMPLETED", "app": {"id": "app"}} for n in range(7)]


async def v2_runs(request: Request) -> JSONResponse:
    """`GET /v2/runs` paging as the real server does it: `hasMore` and `cursor` only when more."""
    limit = int(request.query_params["limit"])
    start = int(request.query_params.get("cursor") or 0)
    page: dict[str, Any] = {"limit": limit}
    if start + limit < len(RUNS):
        page.update(hasMore=True, cursor=str(start + limit))
    return JSONResponse({"data": RUNS[start : start + limit], "metadata": {}, "page": page})


ENGINE = Starlette(routes=[Route("/v2/runs", v2_runs)])


def answering(status: int, body: Any, seen: list[httpx.Request] | None = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


# -- the async core -----------------------------------------------------------------------------


async def test_the_async_client_runs_in_process_on_an_asgi_app() -> None:
    async with AsyncEngineClient.in_process(ENGINE) as client:
        first = await client.runs_page(limit=3)
        rest = await client.runs_page(limit=10, cursor=first.page.cursor)
    assert [run.run_id for run in first.runs] == ["run-0", "run-1", "run-2"]
    assert first.page.has_more and first.page.raw == {"limit": 3, "hasMore": True, "cursor": "3"}
    assert [run.run_id for run in rest.runs] == [f"run-{n}" for n in range(3, 7)]
    assert not rest.page.has_more and rest.page.raw == {"limit": 10}
    assert rest.runs[0].raw == RUNS[3]  # the engine's JSON, for callers that pass it on


async def test_runs_page_sends_the_filters_as_the_server_takes_them() -> None:
    seen: list[httpx.Request] = []
    transport = answering(200, {"data": [], "page": {}}, seen)
    async with AsyncEngineClient("http://engine", transport=transport) as client:
        await client.runs_page(
            app_id=["a", "b"],
            function_id="fn",
            status=["Scheduled", "failed", "FAILED", "odd"],
            since="2026-01-01T00:00:00Z",
        )
    params = seen[0].url.params
    assert params.get_list("app_id") == ["a", "b"] and params.get_list("function_id") == ["fn"]
    assert params.get_list("status") == ["QUEUED", "FAILED", "ODD"]  # the server names "ODD"
    assert params["from"] == "2026-01-01T00:00:00Z"


def test_status_filter_reads_every_spelling_once() -> None:
    assert status_filter(["Queued", "Scheduled", "Running"]) == ["QUEUED", "RUNNING"]
    assert RunStatus.parse("Scheduled") is RunStatus.QUEUED  # v1's word for a queued run
    assert RunStatus.parse("canceled") is RunStatus.CANCELLED


async def test_an_unreachable_engine_is_an_engine_error() -> None:
    async with AsyncEngineClient(f"http://127.0.0.1:{free_port_block(1)}") as client:
        with pytest.raises(EngineError, match="unreachable"):
            await client.list_apps()


async def test_errors_keep_the_engines_own_words_apart_from_the_request() -> None:
    body = {"errors": [{"code": "not_found", "message": "Run not found"}]}
    async with AsyncEngineClient("http://engine", transport=answering(404, body)) as client:
        with pytest.raises(EngineError) as raised:
            await client.get_run("r1")
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert raised.value.reason == "Run not found"
    assert "GET /v2/runs/r1" in str(raised.value)


# -- devserver extras ---------------------------------------------------------------------------


async def test_extras_answer_nothing_where_the_engine_lacks_them() -> None:
    missing = answering(404, {"errors": [{"code": "api_error", "message": "no such route"}]})
    async with AsyncEngineClient("http://engine", transport=missing) as client:
        assert await client.extras.run_jobs("r1") == []
        assert await client.extras.function_flow("app", "fn") is None


async def test_bulk_cancel_answers_the_v1_body_without_an_envelope() -> None:
    seen: list[httpx.Request] = []
    transport = answering(200, {"cancelled_count": 2}, seen)
    async with AsyncEngineClient("http://engine", transport=transport) as client:
        answer = await client.extras.bulk_cancel(
            app_id="app", function_id="fn", started_before="2026-01-01T00:00:00Z", expression="x"
        )
    assert answer == {"cancelled_count": 2}
    assert b'"function_id":"app-fn"' in seen[0].content.replace(b" ", b"")


# -- the blocking facade ------------------------------------------------------------------------


def test_the_facade_blocks_on_the_async_core() -> None:
    with EngineClient("http://engine", transport=httpx.MockTransport(_ids_handler)) as client:
        assert client.send_events([{"name": "a/b"}]) == ["01E"]
        assert client.event_key == "dev" and client.base_url == "http://engine"


async def test_the_facade_works_inside_a_running_event_loop() -> None:
    """A sync harness helper called from an async test: the calls run on the facade's loop."""
    client = EngineClient("http://engine", transport=httpx.MockTransport(_ids_handler))
    try:
        assert client.send_events([{"name": "a/b"}]) == ["01E"]
        assert asyncio.get_running_loop() is not client._loop.loop
    finally:
        client.close()


def test_close_stops_the_facades_thread_and_may_be_repeated() -> None:
    client = EngineClient("http://engine", transport=httpx.MockTransport(_ids_handler))
    thread = client._loop.thread
    client.close()
    client.close()
    assert not thread.is_alive()


def test_an_unclosed_facade_stops_its_thread_when_collected() -> None:
    client = EngineClient("http://engine", transport=httpx.MockTransport(_ids_handler))
    thread = client._loop.thread
    del client
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _ids_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text='{"ids": ["01E"], "status": 200}')


# -- the signing key ----------------------------------------------------------------------------


def test_the_signing_key_hash_is_over_the_keys_bytes() -> None:
    hex_key = "ab" * 32
    expected = hashlib.sha256(bytes.fromhex(hex_key)).hexdigest()
    assert hashed_signing_key(f"signkey-prod-{hex_key}") == expected
    assert hashed_signing_key(f"  signkey-test-{hex_key} ") == expected
    assert hashed_signing_key(hex_key) == expected
    with pytest.raises(ValueError, match="must be hex"):
        hashed_signing_key("signkey-prod-not-hex")
    with pytest.raises(EngineError, match="must be hex"):
        AsyncEngineClient("http://engine", signing_key="change-me")


# -- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [
        ("90s", 90_000),
        ("1h30m", 5_400_000),
        ("2w", 1_209_600_000),
        ("1d", 86_400_000),
        ("250ms", 250),
        ("1.5s", 1_500),
        (".5s", 500),
        ("1.s", 1_000),
        ("0.29s", 290),  # exact: no float error
        ("+5s", 5_000),
        ("-5s", -5_000),
        ("-1.9ms", -1),  # truncated toward zero, like Go's Milliseconds()
        ("0", 0),
        (" 10m ", 600_000),
        ("1500us", 1),
        ("1µs", 0),
        ("1μs", 0),
    ],
)
def test_durations_in_the_engines_syntax(text: str, milliseconds: int) -> None:
    assert parse_duration_ms(text) == milliseconds


@pytest.mark.parametrize("text", ["", "-", "5", "1x", "h1", "1h 2m", "1..5s", "s", "0s0"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_ns(text)


def test_durations_as_timedelta_and_nanoseconds() -> None:
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("-1.5s") == timedelta(seconds=-1.5)
    assert parse_duration_ns("1.000000001s") == 1_000_000_001
    assert parse_duration_ns("0.1s") == int(Decimal("0.1") * 10**9)


# -- ports --------------------------------------------------------------------------------------


def test_a_port_block_is_free_and_below_the_ephemeral_range() -> None:
    base = free_port_block(4)
    assert base >= 20_000 and base + 4 <= 32_000
    assert all(port_is_free(port) for port in range(base, base + 4))
