"""With `--signing-key` / `--event-key` every door of the devserver is locked.

Each door refuses a request without credentials and accepts the authenticated one: the Event API
(configured event keys only), `/invoke/{slug}`, `/fn/register`, `/dev`, `/mcp` (Bearer signing key)
and the dashboard (a login session, plus a same-origin check that fails when `Origin` is missing).
The real inngest-py SDK in cloud mode (INNGEST_DEV=0 + INNGEST_SIGNING_KEY) still syncs and runs.
Bound to anything but loopback, the dashboard and `/mcp` refuse to start without a key. Over-deep
JSON gets a 400 in the real Event API error shape, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import devserver.server as server_module
import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.config import Settings
from devserver.server import create_app
from devserver.testing import (
    EngineHandle,
    serve_app,
    start_devserver,
    sync_app,
    wait_for_run,
)
from engine_client import free_port, hashed_signing_key

pytestmark = pytest.mark.devserver_only

HEX_KEY = "5e" * 32
SIGNING_KEY = f"signkey-test-{HEX_KEY}"
EVENT_KEY = "doors-event-key"
AUTH_FAILED = "Authentication failed\n"
APP_ID = "doors-app"
DEVSERVER = [sys.executable, "-m", "devserver"]


@dataclass
class Locked:
    engine: EngineHandle
    app_url: str

    @property
    def base_url(self) -> str:
        return self.engine.base_url


def cloud_mode_client(engine: EngineHandle) -> inngest.Inngest:
    """An SDK client configured the production way: only through the environment."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INNGEST_DEV", "0")
        env.setenv("INNGEST_SIGNING_KEY", SIGNING_KEY)
        env.setenv("INNGEST_EVENT_KEY", EVENT_KEY)
        env.setenv("INNGEST_BASE_URL", engine.base_url)
        client = inngest.Inngest(app_id=APP_ID)
    assert client.is_production
    return client


def build_functions(client: inngest.Inngest) -> list[Any]:
    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="doors/greet"))
    async def greet(ctx: inngest.Context) -> str:
        async def compose() -> str:
            return f"hello {ctx.event.data.get('name', 'nobody')}"

        return await ctx.step.run("compose", compose)

    return [greet]


@pytest.fixture(scope="module")
def locked() -> Iterator[Locked]:
    """An in-process devserver with both keys, and a cloud-mode SDK app synced to it."""
    port = free_port()
    engine = EngineHandle(f"http://127.0.0.1:{port}", event_key=EVENT_KEY, signing_key=SIGNING_KEY)
    settings = Settings(
        port=port,
        in_memory=True,
        signing_key=SIGNING_KEY,
        event_keys=[EVENT_KEY],
        discovery=False,
        poll=False,
        retry_interval=1,
    )
    client = cloud_mode_client(engine)
    sdk_app = fastapi.FastAPI()
    inngest.fast_api.serve(sdk_app, client, build_functions(client))
    with serve_app(create_app(settings), port=port), serve_app(sdk_app) as app_base:
        asyncio.run(sync_app(engine, app_base + "/api/inngest"))
        yield Locked(engine, app_base)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def event_names(locked: Locked) -> list[str]:
    response = httpx.get(
        f"{locked.base_url}/v1/events", params={"limit": 100}, headers=locked.engine.headers
    )
    assert response.status_code == 200, response.text
    return [event["name"] for event in response.json()["data"]]


def engine_free_env() -> dict[str, str]:
    """The test process's environment without INNGEST_* (the devserver reads those as flags)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}


def assert_auth_failed(response: httpx.Response) -> None:
    """The real server's SigningKeyMiddleware answer."""
    assert response.status_code == 401, response.text
    assert response.text == AUTH_FAILED
    assert response.headers["content-type"].startswith("text/plain")


# ------------------------------------------------------------------------------------ SDK
async def test_cloud_mode_sdk_syncs_and_runs_through_the_locked_doors(locked: Locked) -> None:
    async with httpx.AsyncClient() as http:
        apps = await http.get(f"{locked.base_url}/v2/apps", headers=locked.engine.headers)
        assert APP_ID in apps.text
        sent = await http.post(
            f"{locked.base_url}/e/{EVENT_KEY}", json={"name": "doors/greet", "data": {"name": "x"}}
        )
    [event_id] = sent.json()["ids"]
    run = await wait_for_run(locked.engine, event_id, timeout=20)
    assert run["output"] == "hello x"


# ------------------------------------------------------------------------------------ Event API
async def test_event_api_takes_only_the_configured_event_key(locked: Locked) -> None:
    name = f"doors/keyed-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=locked.base_url) as http:
        for wrong in ("any-key", HEX_KEY, hashed_signing_key(SIGNING_KEY)):
            refused = await http.post(f"/e/{wrong}", json={"name": name})
            assert refused.status_code == 401
            assert refused.json() == {"status": 401, "message": "", "error": "Event key not found"}
        accepted = await http.post(f"/e/{EVENT_KEY}", json={"name": name})
    assert accepted.status_code == 200
    assert event_names(locked).count(name) == 1


async def test_signing_key_without_event_keys_accepts_no_event_key() -> None:
    """`inngest start` without event keys accepts no events: any key used to be let in."""
    settings = Settings(in_memory=True, signing_key=SIGNING_KEY, discovery=False, poll=False)
    with serve_app(create_app(settings)) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            for key in ("anything", "test", EVENT_KEY):
                refused = await http.post(f"/e/{key}", json={"name": "doors/nokeys"})
                assert refused.status_code == 401, refused.text
                assert refused.json()["error"] == "Event key not found"


def test_cli_refuses_a_signing_key_without_an_event_key() -> None:
    result = subprocess.run(
        [*DEVSERVER, "--in-memory", "--port", str(free_port()), "--signing-key", SIGNING_KEY],
        capture_output=True,
        text=True,
        timeout=60,
        env=engine_free_env(),
    )
    assert result.returncode != 0
    assert "--event-key" in result.stderr


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_event(depth: int) -> str:
    data = '{"a":' * depth + "1" + "}" * depth
    return f'{{"name":"doors/deep","data":{data}}}'


@pytest.mark.parametrize(
    "body",
    [deep_array(100_000), deep_event(5_000), deep_event(150)],
    ids=["array-100000", "data-5000", "data-150"],
)
async def test_over_deep_json_event_is_400_not_500(locked: Locked, body: str) -> None:
    async with httpx.AsyncClient(base_url=locked.base_url) as http:
        response = await http.post(
            f"/e/{EVENT_KEY}", content=body, headers={"content-type": "application/json"}
        )
        healthy = await http.get("/health")
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["ids"] == [""] and answer["status"] == 400
    assert "nested" in answer["error"]
    assert healthy.status_code == 200


async def test_reasonably_nested_event_is_accepted(locked: Locked) -> None:
    async with httpx.AsyncClient(base_url=locked.base_url) as http:
        response = await http.post(
            f"/e/{EVENT_KEY}", content=deep_event(50), headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text


async def test_over_deep_json_elsewhere_is_400(locked: Locked) -> None:
    async with httpx.AsyncClient(base_url=locked.base_url, headers=locked.engine.headers) as http:
        register = await http.post("/fn/register", content=deep_array(100_000))
        invoke = await http.post(f"/invoke/{APP_ID}-greet", content=deep_event(5_000))
        cancel = await http.post("/v1/cancellations", content=deep_array(100_000))
    assert register.status_code == 400, register.text
    assert invoke.status_code == 400, invoke.text
    assert cancel.status_code == 400, cancel.text


# ------------------------------------------------------------------------------------ /invoke
async def test_invoke_needs_the_signing_key(locked: Locked) -> None:
    slug = f"{APP_ID}-greet"
    async with httpx.AsyncClient(base_url=locked.base_url) as http:
        for headers in ({}, bearer("wrong"), bearer(EVENT_KEY)):
            refused = await http.post(
                f"/invoke/{slug}", json={"data": {"name": "intruder"}}, headers=headers
            )
            assert_auth_failed(refused)
        accepted = await http.post(
            f"/invoke/{slug}", json={"data": {"name": "owner"}}, headers=locked.engine.headers
        )
    assert accepted.status_code == 200, accepted.text
    run = await wait_for_run(locked.engine, accepted.json()["id"], timeout=20)
    assert run["output"] == "hello owner"
    async with httpx.AsyncClient(base_url=locked.base_url, headers=locked.engine.headers) as http:
        listed = await http.get(
            "/v1/events", params={"name": "inngest/function.invoked", "limit": 100}
        )
    invoked_for = [event["data"].get("name") for event in listed.json()["data"]]
    assert "owner" in invoked_for
    assert "intruder" not in invoked_for


# ------------------------------------------------------------------------------------ /fn/register
def intruder_registration(url: str) -> dict[str, Any]:
    return {
        "appname": "intruder",
        "url": url,
        "functions": [
            {
                "id": "intruder-grab",
                "name": "grab",
                "triggers": [{"event": "doors/greet"}],
                "steps": {"step": {"id": "step", "name": "step", "runtime": {"url": url}}},
            }
        ],
    }


async def test_register_needs_the_signing_key(locked: Locked) -> None:
    body = intruder_registration("http://attacker.example/api/inngest")
    async with httpx.AsyncClient(base_url=locked.base_url) as http:
        for headers in ({}, bearer("wrong"), bearer(EVENT_KEY), {"authorization": HEX_KEY}):
            assert_auth_failed(await http.post("/fn/register", json=body, headers=headers))
        apps = await http.get("/v2/apps", headers=locked.engine.headers)
    assert "intruder" not in apps.text
    # The SDK's own sync (Bearer <hashed key>) is what gets in: the fixture's app is there.
    assert APP_ID in apps.text


async def test_dev_info_needs_the_signing_key(locked: Locked) -> None:
    async with httpx.AsyncClient(base_url=locked.base_url) as http:
        assert_auth_failed(await http.get("/dev"))
        authed = await http.get("/dev", headers=bearer(SIGNING_KEY))
    assert authed.status_code != 401


# ------------------------------------------------------------------------------------ /mcp
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "doors-test", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def test_mcp_needs_the_signing_key(locked: Locked) -> None:
    async with httpx.AsyncClient(base_url=locked.base_url, timeout=60) as http:
        for extra in ({}, bearer("wrong"), bearer(EVENT_KEY)):
            refused = await http.post("/mcp", json=MCP_INITIALIZE, headers={**MCP_HEADERS, **extra})
            assert_auth_failed(refused)
        for token in (hashed_signing_key(SIGNING_KEY), SIGNING_KEY, HEX_KEY):
            accepted = await http.post(
                "/mcp", json=MCP_INITIALIZE, headers={**MCP_HEADERS, **bearer(token)}
            )
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["result"]["serverInfo"]


async def test_mcp_tools_act_only_with_the_signing_key(locked: Locked) -> None:
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    name = f"doors/mcp-{uuid.uuid4().hex[:8]}"
    anonymous = create_mcp_http_client()
    with pytest.raises(Exception):  # noqa: B017 (the client surfaces the 401 its own way)
        async with Client(streamable_http_client(locked.base_url + "/mcp", http_client=anonymous)):
            pass
    await anonymous.aclose()
    assert name not in event_names(locked)

    authed: httpx2.AsyncClient = create_mcp_http_client(
        headers=bearer(hashed_signing_key(SIGNING_KEY))
    )
    async with (
        authed,
        Client(streamable_http_client(locked.base_url + "/mcp", http_client=authed)) as client,
    ):
        result = await client.call_tool("send_event", {"name": name, "data": {}})
    assert not result.is_error, result.content
    assert name in event_names(locked)


# ------------------------------------------------------------------------------------ dashboard
def origin_of(base_url: str) -> dict[str, str]:
    return {"origin": base_url}


@contextlib.contextmanager
def login(locked: Locked, key: str = SIGNING_KEY) -> Iterator[httpx.Client]:
    """A client holding a dashboard session (logged in through the login form)."""
    with httpx.Client(base_url=locked.base_url, timeout=30) as client:
        response = client.post(
            "/login", data={"key": key, "next": "/runs"}, headers=origin_of(locked.base_url)
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/runs"
        yield client


def test_dashboard_pages_need_a_login(locked: Locked) -> None:
    for path in ("/", "/runs", "/events", "/send", "/functions", "/apps", "/invoke"):
        response = httpx.get(locked.base_url + path, follow_redirects=False)
        assert response.status_code == 303, (path, response.status_code)
        location = urlparse(response.headers["location"])
        assert location.path == "/login"
    page = httpx.get(locked.base_url + "/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text


@pytest.mark.parametrize("key", [SIGNING_KEY, HEX_KEY, hashed_signing_key(SIGNING_KEY)])
def test_dashboard_login_sets_a_strict_httponly_session(locked: Locked, key: str) -> None:
    with login(locked, key) as client:
        cookie = client.cookies.jar
        [session] = list(cookie)
        assert session.value not in (SIGNING_KEY, HEX_KEY, hashed_signing_key(SIGNING_KEY))
        assert HEX_KEY not in session.value
        raw = client.post("/login", data={"key": key}, headers=origin_of(locked.base_url)).headers[
            "set-cookie"
        ]
        assert "httponly" in raw.lower()
        assert "samesite=strict" in raw.lower()
        page = client.get("/runs", follow_redirects=False)
    assert page.status_code == 200


def test_dashboard_login_refuses_a_wrong_key(locked: Locked) -> None:
    for key in ("wrong", EVENT_KEY, "signkey-" + HEX_KEY, HEX_KEY.upper()):
        response = httpx.post(
            locked.base_url + "/login",
            data={"key": key},
            headers=origin_of(locked.base_url),
            follow_redirects=False,
        )
        assert response.status_code == 401, key
        assert "set-cookie" not in response.headers


def test_dashboard_login_refuses_a_post_without_origin(locked: Locked) -> None:
    response = httpx.post(
        locked.base_url + "/login", data={"key": SIGNING_KEY}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def send_form(name: str) -> dict[str, str]:
    return {"event": json.dumps({"name": name, "data": {}})}


def test_dashboard_actions_refuse_requests_without_a_session(locked: Locked) -> None:
    name = f"doors/dash-{uuid.uuid4().hex[:8]}"
    for headers in ({}, origin_of(locked.base_url)):
        response = httpx.post(
            locked.base_url + "/send", data=send_form(name), headers=headers, follow_redirects=False
        )
        assert response.status_code == 401, response.text
    run_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for path in (f"/runs/{run_id}/cancel", f"/runs/{run_id}/rerun", "/runs/bulk-rerun", "/invoke"):
        response = httpx.post(
            locked.base_url + path, headers=origin_of(locked.base_url), follow_redirects=False
        )
        assert response.status_code == 401, path
    assert name not in event_names(locked)


def test_dashboard_actions_refuse_a_session_post_without_same_origin(locked: Locked) -> None:
    name = f"doors/dash-{uuid.uuid4().hex[:8]}"
    with login(locked) as client:
        for headers in ({}, {"origin": "null"}, {"origin": "http://evil.example"}):
            response = client.post(
                "/send", data=send_form(name), headers=headers, follow_redirects=False
            )
            assert response.status_code == 403, (headers, response.text)
        assert name not in event_names(locked)
        sent = client.post(
            "/send",
            data=send_form(name),
            headers=origin_of(locked.base_url),
            follow_redirects=False,
        )
    assert sent.status_code == 303
    assert "msg=sent" in sent.headers["location"]
    assert name in event_names(locked)


def test_dashboard_logout_ends_the_session(locked: Locked) -> None:
    with login(locked) as client:
        out = client.post("/logout", headers=origin_of(locked.base_url), follow_redirects=False)
        assert out.status_code == 303
        page = client.get("/runs", follow_redirects=False)
    assert page.status_code == 303


# ------------------------------------------------------------------------------------ binding
def test_dashboard_refuses_to_start_on_a_public_address_without_a_key() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.com"):
        with pytest.raises(server_module.StartupRefused, match="--signing-key"):
            create_app(Settings(host=host, in_memory=True))
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        create_app(Settings(host=host, in_memory=True))
    create_app(Settings(host="0.0.0.0", in_memory=True, signing_key=SIGNING_KEY))
    create_app(Settings(host="0.0.0.0", in_memory=True, ui=False))


def test_cli_names_the_flag_when_refusing_a_public_address() -> None:
    port = free_port()
    process = subprocess.Popen(
        [*DEVSERVER, "--in-memory", "--no-discovery", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=engine_free_env(),
    )
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the devserver started on 0.0.0.0 without a key")
    assert process.returncode != 0
    assert "--signing-key" in stderr
    assert "0.0.0.0" in stderr


def test_public_address_with_keys_starts_and_stays_locked() -> None:
    server = start_devserver(
        "--host",  # the last --host wins over the helper's own 127.0.0.1
        "0.0.0.0",
        "--in-memory",
        "--no-discovery",
        "--no-poll",
        "--signing-key",
        SIGNING_KEY,
        "--event-key",
        EVENT_KEY,
    )
    try:
        assert httpx.get(server.base_url + "/health").status_code == 200
        page = httpx.get(server.base_url + "/runs", follow_redirects=False)
        assert page.status_code == 303
        mcp = httpx.post(server.base_url + "/mcp", json=MCP_INITIALIZE, headers=MCP_HEADERS)
        assert_auth_failed(mcp)
    finally:
        server.stop()
