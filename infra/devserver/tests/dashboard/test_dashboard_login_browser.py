"""With a signing key, the dashboard in a real browser: log in, then send an event and see its run.

Debian's headless Chromium driven by Playwright, against an in-process devserver started with
signing and event keys, and an inngest-py app in cloud mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pytest
from devserver.config import Settings
from devserver.server import create_app
from devserver.testing import EngineHandle, make_client, serve_app, sync_app
from engine_client import free_port
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.devserver_only]

SIGNING_KEY = "signkey-test-" + "7c" * 32
EVENT_KEY = "login-browser-event-key"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def chromium() -> str:
    override = os.environ.get("CHROMIUM_PATH")
    found = override if override and Path(override).exists() else shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium, or CHROMIUM_PATH)")
    return found


@pytest.fixture(scope="module")
def locked_engine() -> Iterator[EngineHandle]:
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
    client = make_client(engine, "login-demo")  # cloud mode: is_production with the signing key

    @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="login/hello"))
    async def hello(ctx: inngest.Context) -> str:
        async def greet() -> str:
            return f"Hello {ctx.event.data['name']}"

        return await ctx.step.run("greet", greet)

    sdk_app = fastapi.FastAPI()
    inngest.fast_api.serve(sdk_app, client, [hello])
    with serve_app(create_app(settings), port=port), serve_app(sdk_app) as app_base:
        asyncio.run(sync_app(engine, app_base + "/api/inngest"))
        yield engine


@pytest.fixture(scope="module")
def page(locked_engine: EngineHandle) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=locked_engine.base_url)
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_dashboard_login_then_send_event_and_watch_run(page: Any) -> None:
    page.goto("/send")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fsend$"))

    page.fill("#login-key", "not-the-key")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_contain_text("not this engine's signing key")
    assert page.context.cookies() == []

    page.fill("#login-key", SIGNING_KEY)
    page.click("#login-button")
    expect(page).to_have_url(re.compile(r"/send$"))
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts never see the session
    assert "7c7c" not in cookie["value"]

    event = {"name": "login/hello", "data": {"name": "Grace"}}
    page.fill("#event-json", json.dumps(event))
    page.click("#send-button")
    expect(page.locator("#flash-msg")).to_contain_text("sent login/hello")
    event_id = page.locator("#flash-msg").inner_text().split("(")[1].rstrip(")")
    page.locator(f'#events-table tr[data-event-id="{event_id}"] a[href^="/runs/"]').first.click()
    expect(page.locator("#run-status")).to_have_text("Completed")
    expect(page.locator("#run-output")).to_contain_text("Hello Grace")


def test_dashboard_logout_asks_for_the_key_again(page: Any) -> None:
    page.goto("/runs")
    page.click("#logout-button")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns$"))
