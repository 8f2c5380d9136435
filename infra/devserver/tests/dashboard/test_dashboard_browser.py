"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright).

Sends an event from the JSON editor and watches its run complete, cancels a sleeping run, reruns a
failed one, invokes a cron function, and loads every page. Screenshots go to
test-artifacts/dashboard/ (DASHBOARD_ARTIFACTS_DIR); with UPDATE_DOCS_SCREENSHOTS=1 the run-detail
shot is also written to docs/images/run-detail.png for the README.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

REPO_ROOT = Path(__file__).resolve().parents[4]
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts/dashboard"))
DemoApp = Any  # the conftest's DemoApp (conftest modules are not importable by name)

pytestmark = [pytest.mark.browser, pytest.mark.devserver_only]


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def run_status_via_api(demo: DemoApp, run_id: str) -> str:
    response = httpx.get(
        f"{demo.engine.base_url}/v1/runs/{run_id}", headers=demo.engine.headers, timeout=10
    )
    status: str = response.json()["data"]["status"]
    return status


def test_dashboard_send_event_and_watch_run_complete(browser_page: Any, demo_app: DemoApp) -> None:
    page = browser_page
    page.goto("/send")
    # Catalog templates pre-fill the editor with the event's required fields.
    page.select_option("#event-template", label="customer/email.received")
    template = json.loads(page.input_value("#event-json"))
    assert template["name"] == "customer/email.received"
    assert template["data"]
    event = {"name": "dash/hello", "data": {"name": "Ada", "email": "ada@example.com"}}
    page.fill("#event-json", json.dumps(event))
    expect(page.locator("#event-json-status")).to_have_text("valid JSON")
    page.click("#send-button")

    expect(page).to_have_url(re.compile(r"/events\?msg="))
    expect(page.locator("#flash-msg")).to_contain_text("sent dash/hello")
    event_id = page.locator("#flash-msg").inner_text().split("(")[1].rstrip(")")
    row = page.locator(f'#events-table tr[data-event-id="{event_id}"]')
    row.locator('a[href^="/runs/"]').first.click()  # waits for the live refresh to list the run

    expect(page.locator("#run-status")).to_have_text("Completed")
    expect(page.locator('tr[data-step="load-person"] .attempts')).to_have_text("1")
    expect(page.locator('tr[data-step="greet"]')).to_be_visible()
    expect(page.locator("#run-output")).to_contain_text("Hello Ada")
    # The email field is named in the redaction settings: never shown, in input or step output.
    expect(page.locator("#run-input")).to_contain_text("[redacted]")
    assert "ada@example.com" not in page.content()

    page.locator("#steps-table details").evaluate_all("ds => ds.forEach(d => (d.open = true))")
    expect(page.locator('tr[data-step="load-person"] + tr.detail pre')).to_contain_text(
        "[redacted]"
    )
    shot(page, "run-detail")
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        target = REPO_ROOT / "docs/images/run-detail.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "run-detail.png", target)


def test_dashboard_cancel_sleeping_run(browser_page: Any, demo_app: DemoApp) -> None:
    page = browser_page
    event_id = demo_app.send("dash/sleep", {"order": 7})
    run = demo_app.wait_run(event_id, {"Running"})
    page.goto(f"/runs/{run['run_id']}")
    expect(page.locator('[data-waiting="sleeping"]')).to_contain_text("in step nap until")
    expect(page.locator('tr[data-step="prepare"]')).to_be_visible()
    shot(page, "run-sleeping")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-run button")
    expect(page.locator("#flash-msg")).to_contain_text("cancellation requested")
    expect(page.locator("#run-status")).to_have_text("Cancelled")
    assert run_status_via_api(demo_app, run["run_id"]) == "Cancelled"
    assert "sleeper_woke" not in demo_app.state


def test_dashboard_rerun_failed_run(browser_page: Any, demo_app: DemoApp) -> None:
    page = browser_page
    demo_app.state["fixed"] = False
    event_id = demo_app.send("dash/flaky", {"order": 9})
    failed = demo_app.wait_run(event_id, {"Failed"})
    page.goto(f"/runs/{failed['run_id']}")
    expect(page.locator("#run-status")).to_have_text("Failed")
    expect(page.locator('tr[data-step="charge"]')).to_be_visible()
    expect(page.locator("#steps-table")).to_contain_text("card processor unavailable")
    shot(page, "run-failed")

    demo_app.state["fixed"] = True  # "deploy the fix", then replay
    page.click("#rerun-run button")
    expect(page.locator("#flash-msg")).to_contain_text(f"rerun from the top of {failed['run_id']}")
    expect(page.locator("#run-status")).to_have_text("Completed")
    new_run_id = page.url.split("/runs/")[1].split("?")[0]
    assert new_run_id != failed["run_id"]
    expect(page.locator(f'a[href="/runs/{failed["run_id"]}"]')).to_be_visible()
    expect(page.locator("#run-output")).to_contain_text("charged")


def test_dashboard_pages_functions_apps_events_invoke(browser_page: Any, demo_app: DemoApp) -> None:
    page = browser_page
    unmatched_id = demo_app.send("dash/nobody-listens", {"x": 1})
    wait_id = demo_app.send("dash/wait", {"id": "req-1"})
    waiting = demo_app.wait_run(wait_id, {"Running"})

    page.goto("/functions")
    flaky = page.locator('tr[data-function="dash-demo-dash-flaky"]')
    expect(flaky).to_contain_text("dash/flaky")
    expect(page.locator('tr[data-function="dash-demo-dash-cron"]')).to_contain_text(
        "cron: 0 0 1 1 *"
    )
    expect(flaky.locator("td.flow")).to_contain_text("retries: 0")
    shot(page, "functions")

    page.goto("/apps")
    expect(page.locator('tr[data-app="dash-demo"]')).to_contain_text("synced")
    expect(page.locator('tr[data-app="dash-demo"]')).to_contain_text(demo_app.base_url)
    shot(page, "apps")

    page.goto("/events")
    expect(page.locator(f'#unmatched-table tr[data-event-id="{unmatched_id}"]')).to_be_visible()
    expect(page.locator(f'#events-table tr[data-event-id="{wait_id}"]')).to_contain_text(
        "dash-demo-dash-waiter"
    )
    expect(page.locator('#unmatched-table tr[data-event-name^="inngest/"]')).to_have_count(0)
    shot(page, "events")

    page.goto(f"/runs/{waiting['run_id']}")
    banner = page.locator('[data-waiting="waiting"]')
    expect(banner).to_contain_text("dash/approved")
    expect(banner).to_contain_text("async.data.id")  # the expression, event.* interpolated
    expect(banner).to_contain_text("times out at")
    shot(page, "run-waiting")

    # The runs list refreshes itself: a run started after the page loaded shows up.
    page.goto("/runs?function=dash-demo-dash-hello&window=1h")
    late = demo_app.wait_run(demo_app.send("dash/hello", {"name": "Late"}), {"Completed"})
    expect(page.locator(f'#runs-table tr[data-run-id="{late["run_id"]}"]')).to_be_visible()

    page.goto("/runs?function=dash-demo-dash-flaky&window=1h")
    rows = page.locator("#runs-table tbody tr[data-run-id]")
    expect(rows.first).to_be_visible()
    assert all(
        status in ("Failed", "Completed")
        for status in rows.evaluate_all("rs => rs.map(r => r.dataset.status)")
    )
    shot(page, "runs")

    page.goto("/invoke?function=dash-demo/dash-cron")
    page.fill("#invoke-data", '{"reason": "manual"}')
    page.click("#invoke-button")
    expect(page).to_have_url(re.compile(r"/runs/[0-9A-Z]{26}"))
    expect(page.locator("#run-status")).to_have_text("Completed")
    assert demo_app.state.get("cron_invoked") == 1

    page.goto("/notifications")
    expect(page.locator("#notifications-not-configured")).to_be_visible()
