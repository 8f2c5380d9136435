"""Fixtures for the dashboard tests: a real inngest-py app on the session devserver, Chromium.

The app's functions put runs in every state the dashboard shows: completed (`dash-hello`),
sleeping (`dash-sleeper`), waiting for an event (`dash-waiter`), failed and then fixed
(`dash-flaky`), and a cron function to invoke by hand (`dash-cron`).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from devserver.testing import EngineHandle, make_client, serve_app

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[4]
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts/dashboard"))


@dataclass
class DemoApp:
    engine: EngineHandle
    app_id: str
    base_url: str
    state: dict[str, Any] = field(default_factory=dict)

    def send(self, name: str, data: dict[str, Any]) -> str:
        response = httpx.post(
            f"{self.engine.base_url}/e/{self.engine.event_key}",
            json=[{"name": name, "data": data}],
            timeout=10,
        )
        response.raise_for_status()
        event_id: str = response.json()["ids"][0]
        return event_id

    def wait_run(self, event_id: str, statuses: set[str], timeout: float = 15.0) -> dict[str, Any]:
        """The first run of the event once it reached one of `statuses` (REST /v1 only)."""
        deadline = time.monotonic() + timeout
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = httpx.get(
                f"{self.engine.base_url}/v1/events/{event_id}/runs",
                headers=self.engine.headers,
                timeout=10,
            ).json()["data"]
            if runs and runs[0]["status"] in statuses:
                return runs[0]
            time.sleep(0.1)
        raise AssertionError(f"no run of {event_id} reached {statuses}; last seen {runs}")


def build_functions(client: inngest.Inngest, state: dict[str, Any]) -> list[Any]:
    @client.create_function(fn_id="dash-hello", trigger=inngest.TriggerEvent(event="dash/hello"))
    async def hello(ctx: inngest.Context) -> dict[str, Any]:
        async def load() -> dict[str, str]:
            state["hello_loads"] = state.get("hello_loads", 0) + 1
            data = ctx.event.data
            return {"name": str(data["name"]), "email": str(data.get("email", ""))}

        async def greet(person: dict[str, str]) -> str:
            return f"Hello {person['name']}"

        person = await ctx.step.run("load-person", load)
        greeting = await ctx.step.run("greet", greet, person)
        return {"greeting": greeting}

    @client.create_function(fn_id="dash-sleeper", trigger=inngest.TriggerEvent(event="dash/sleep"))
    async def sleeper(ctx: inngest.Context) -> str:
        async def prepare() -> str:
            return "prepared"

        await ctx.step.run("prepare", prepare)
        await ctx.step.sleep("nap", datetime.timedelta(minutes=10))
        state["sleeper_woke"] = True
        return "woke"

    @client.create_function(fn_id="dash-waiter", trigger=inngest.TriggerEvent(event="dash/wait"))
    async def waiter(ctx: inngest.Context) -> str:
        approval = await ctx.step.wait_for_event(
            "approval",
            event="dash/approved",
            if_exp="async.data.id == event.data.id",
            timeout=datetime.timedelta(minutes=10),
        )
        return "approved" if approval else "timed out"

    @client.create_function(
        fn_id="dash-flaky", trigger=inngest.TriggerEvent(event="dash/flaky"), retries=0
    )
    async def flaky(ctx: inngest.Context) -> str:
        async def charge() -> str:
            if not state.get("fixed"):
                token = ctx.event.data.get("token", "")
                raise RuntimeError(f"card processor unavailable (simulated outage) {token}")
            return "charged"

        return await ctx.step.run("charge", charge)

    @client.create_function(fn_id="dash-cron", trigger=inngest.TriggerCron(cron="0 0 1 1 *"))
    async def yearly(ctx: inngest.Context) -> str:
        state["cron_invoked"] = state.get("cron_invoked", 0) + 1
        return "yearly report"

    @client.create_function(
        fn_id="dash-keyed",
        trigger=inngest.TriggerEvent(event="dash/keyed"),
        concurrency=[inngest.Concurrency(limit=5, key="event.data.customer")],
    )
    async def keyed(ctx: inngest.Context) -> str:
        await ctx.step.sleep("hold", datetime.timedelta(minutes=10))
        return "done"

    @client.create_function(
        fn_id="dash-serial",
        trigger=inngest.TriggerEvent(event="dash/serial"),
        concurrency=[inngest.Concurrency(limit=1)],
    )
    async def serial(ctx: inngest.Context) -> str:
        async def work() -> str:
            await asyncio.to_thread(state["gate"].wait, 20)  # holds the only slot until released
            return "done"

        return await ctx.step.run("work", work)

    return [hello, sleeper, waiter, flaky, yearly, keyed, serial]


@pytest.fixture(scope="module")
def demo_app(inngest_engine: EngineHandle) -> Iterator[DemoApp]:
    if not inngest_engine.is_devserver:
        pytest.skip("the dashboard is the devserver's own (INNGEST_BASE_URL names another engine)")
    state: dict[str, Any] = {"gate": threading.Event()}
    client = make_client(inngest_engine, "dash-demo")
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, build_functions(client, state))
    with serve_app(app) as base:
        response = httpx.put(base + "/api/inngest", timeout=30)
        assert response.status_code == 200, response.text
        yield DemoApp(inngest_engine, "dash-demo", base, state)


def chromium_path() -> str | None:
    """Debian's Chromium (or CHROMIUM_PATH); never a browser downloaded by `playwright install`."""
    override = os.environ.get("CHROMIUM_PATH")
    if override:
        return override if Path(override).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    return found


@pytest.fixture(scope="module")
def browser_page(demo_app: DemoApp) -> Iterator[Any]:
    """One headless Chromium (Debian's, driven by Playwright) for the whole module."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed (apt-get install -y chromium, or set CHROMIUM_PATH): "
            "browser tests skipped"
        )
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=demo_app.engine.base_url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()
