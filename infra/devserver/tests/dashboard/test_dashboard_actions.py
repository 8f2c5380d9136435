"""Dashboard actions over HTTP (form posts): bulk cancel, bulk rerun, bad input, sinks page."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from devserver.dashboard import DashboardSettings, install_dashboard
from engine_client import AsyncEngineClient
from fastapi import FastAPI

pytestmark = pytest.mark.devserver_only


def post_form(demo: Any, path: str, form: dict[str, str]) -> tuple[str, dict[str, str]]:
    """POST a form; returns (redirect path, {msg/err: text})."""
    response = httpx.post(
        demo.engine.base_url + path, data=form, follow_redirects=False, timeout=30
    )
    assert response.status_code == 303, response.text
    location = urlparse(response.headers["location"])
    return location.path, {k: v[0] for k, v in parse_qs(location.query).items()}


def runs_of(demo: Any, event_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{demo.engine.base_url}/v1/events/{event_id}/runs", timeout=10)
    runs: list[dict[str, Any]] = response.json()["data"]
    return runs


def test_dashboard_bulk_cancel_by_expression(demo_app: Any) -> None:
    noisy, quiet = f"noisy-{uuid.uuid4().hex[:6]}", f"quiet-{uuid.uuid4().hex[:6]}"
    events = [demo_app.send("dash/sleep", {"customer": c}) for c in (noisy, noisy, quiet)]
    runs = [demo_app.wait_run(e, {"Running"}) for e in events]

    path, message = post_form(
        demo_app,
        "/runs/bulk-cancel",
        {"function": "dash-demo/dash-sleeper", "if": f"event.data.customer == '{noisy}'"},
    )
    assert path == "/runs"
    assert message == {"msg": "bulk cancel of dash-sleeper accepted (2 runs)"}
    statuses = [runs_of(demo_app, e)[0]["status"] for e in events]
    assert statuses == ["Cancelled", "Cancelled", "Running"]
    assert runs[2]["run_id"] == runs_of(demo_app, events[2])[0]["run_id"]


def test_dashboard_bulk_rerun_of_failed_runs_matching_an_error(demo_app: Any) -> None:
    token = f"batch-{uuid.uuid4().hex[:8]}"
    demo_app.state["fixed"] = False
    failing = [demo_app.send("dash/flaky", {"token": token}) for _ in range(2)]
    other = demo_app.send("dash/flaky", {"token": "someone-else"})
    failed = [demo_app.wait_run(e, {"Failed"}) for e in [*failing, other]]
    demo_app.state["fixed"] = True

    path, message = post_form(
        demo_app,
        "/runs/bulk-rerun",
        {"function": "dash-demo-dash-flaky", "window": "15m", "error_pattern": token},
    )
    assert (path, message) == ("/runs", {"msg": "reran 2 failed run(s)"})

    # Each rerun is a fresh run of the same event, pointing at the run it replays.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reruns = {e: [r for r in runs_of(demo_app, e) if r.get("original_run_id")] for e in failing}
        if all(rs and rs[0]["status"] == "Completed" for rs in reruns.values()):
            break
        time.sleep(0.1)
    for event_id, run in zip(failing, failed, strict=False):
        [rerun] = reruns[event_id]
        assert rerun["original_run_id"] == run["run_id"]
        assert rerun["status"] == "Completed"
        assert rerun["output"] == "charged"
    assert [r["status"] for r in runs_of(demo_app, other)] == ["Failed"]


def test_dashboard_rerun_from_a_step_reuses_the_earlier_memos(demo_app: Any) -> None:
    event_id = demo_app.send("dash/hello", {"name": "Grace"})
    original = demo_app.wait_run(event_id, {"Completed"})
    loads_before = demo_app.state["hello_loads"]
    trace = httpx.get(
        f"{demo_app.engine.base_url}/v2/runs/{original['run_id']}/trace", timeout=10
    ).json()["data"]
    greet = next(s for s in trace["rootSpan"]["children"] if s["name"] == "greet")

    path, message = post_form(
        demo_app, f"/runs/{original['run_id']}/rerun", {"step_id": greet["stepId"]}
    )
    new_run_id = path.removeprefix("/runs/")
    assert new_run_id != original["run_id"]
    assert message == {"msg": f"rerun from step {greet['stepId']} of {original['run_id']}"}
    deadline = time.monotonic() + 15
    rerun: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rerun = httpx.get(f"{demo_app.engine.base_url}/v1/runs/{new_run_id}", timeout=10).json()[
            "data"
        ]
        if rerun["status"] == "Completed":
            break
        time.sleep(0.1)
    assert rerun["status"] == "Completed"
    assert rerun["output"] == {"greeting": "Hello Grace"}
    assert demo_app.state["hello_loads"] == loads_before  # load-person came from its memo


def test_dashboard_functions_page_counts_running_runs_per_concurrency_key(demo_app: Any) -> None:
    a, b = f"cust-a-{uuid.uuid4().hex[:6]}", f"cust-b-{uuid.uuid4().hex[:6]}"
    events = [demo_app.send("dash/keyed", {"customer": c}) for c in (a, a, b)]
    for event_id in events:
        demo_app.wait_run(event_id, {"Running"})
    page = httpx.get(demo_app.engine.base_url + "/functions", timeout=30).text
    row = page.split('data-function="dash-demo-dash-keyed"', 1)[1].split("</tr>", 1)[0]
    assert "event.data.customer" in row
    assert f"{a} = 2" in row and f"{b} = 1" in row
    assert '<td class="running">3</td>' in row


def test_dashboard_functions_page_shows_queue_depth_behind_a_concurrency_limit(
    demo_app: Any,
) -> None:
    gate = demo_app.state["gate"]
    gate.clear()
    events = [demo_app.send("dash/serial", {"n": n}) for n in range(3)]
    try:
        demo_app.wait_run(events[0], {"Running"})
        row = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            page = httpx.get(demo_app.engine.base_url + "/functions", timeout=30).text
            row = page.split('data-function="dash-demo-dash-serial"', 1)[1].split("</tr>", 1)[0]
            if '<td class="queued">2</td>' in row:
                break
            time.sleep(0.1)
        assert '<td class="queued">2</td>' in row, row
        assert '<td class="running">1</td>' in row
        # The engine's flow-control view: the one slot of the function is in use.
        assert "in flight fn:dash-demo-dash-serial: 1" in row, row
        assert "calls waiting for a slot: 2" in row, row
    finally:
        gate.set()
    for event_id in events:
        assert demo_app.wait_run(event_id, {"Completed"})["output"] == "done"


def test_dashboard_bad_input_comes_back_as_a_readable_error(demo_app: Any) -> None:
    path, message = post_form(demo_app, "/send", {"event": "{not json"})
    assert path == "/send"
    assert "the event is not valid JSON" in message["err"]

    _, message = post_form(demo_app, "/send", {"event": '{"data": {}}'})
    assert message["err"] == 'the event needs a non-empty "name"'

    _, message = post_form(demo_app, "/send", {"event": '{"name": "inngest/function.failed"}'})
    assert message["err"].startswith("the engine refused the event:")

    path, message = post_form(demo_app, "/invoke", {"function": "dash-demo/no-such-fn"})
    assert path == "/invoke"
    assert "invoke refused" in message["err"] and "no-such-fn" in message["err"]

    _, message = post_form(demo_app, "/runs/bulk-rerun", {"error_pattern": "(unclosed"})
    assert message["err"].startswith("bad error pattern")

    page = httpx.get(demo_app.engine.base_url + "/runs/01JZZZZZZZZZZZZZZZZZZZZZZZ", timeout=10)
    assert page.status_code == 404
    assert "No run 01JZZZZZZZZZZZZZZZZZZZZZZZ" in page.text


async def test_dashboard_notifications_page_reads_the_local_sinks(tmp_path: Path) -> None:
    from service_kit.models import Notification
    from sqlalchemy import create_engine, insert

    url = f"sqlite:///{tmp_path / 'nerve.db'}"
    engine = create_engine(url)
    Notification.__table__.create(engine)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            insert(Notification.__table__),  # type: ignore[arg-type]
            [
                {
                    "id": "ntf_1",
                    "dedup_key": "approval-req-1",
                    "channel": "slack",
                    "kind": "approval_request",
                    "recipient": "#refund-approvals",
                    "subject": "Refund approval needed for req-1",
                    "body": "Approve or reject",
                    "status": "sent",
                    "attempts": 1,
                    "run_id": "01RUNID",
                }
            ],
        )
    engine.dispose()

    app = FastAPI()
    unused_engine = AsyncEngineClient("http://127.0.0.1:9")  # the page never calls the engine
    install_dashboard(
        app, settings=DashboardSettings(nerve_database_url=url), client=unused_engine, mcp=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
        page = await client.get("/notifications")
        slack_only = await client.get("/notifications", params={"channel": "email"})
    assert page.status_code == 200
    assert "Refund approval needed for req-1" in page.text
    assert 'href="/runs/01RUNID"' in page.text
    assert "Refund approval needed" not in slack_only.text
    assert "No notifications yet." in slack_only.text
    await app.state.dashboard_notifications.aclose()


def test_dashboard_refuses_cross_site_form_posts(demo_app: Any) -> None:
    event_id = demo_app.send("dash/sleep", {"customer": f"csrf-{uuid.uuid4().hex[:6]}"})
    run = demo_app.wait_run(event_id, {"Running"})
    response = httpx.post(
        f"{demo_app.engine.base_url}/runs/{run['run_id']}/cancel",
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 403
    assert runs_of(demo_app, event_id)[0]["status"] == "Running"

    same_site = httpx.post(
        f"{demo_app.engine.base_url}/runs/{run['run_id']}/cancel",
        headers={"Origin": demo_app.engine.base_url},
        follow_redirects=False,
        timeout=10,
    )
    assert same_site.status_code == 303
    assert runs_of(demo_app, event_id)[0]["status"] == "Cancelled"


async def test_dashboard_standalone_against_an_engine_url(demo_app: Any) -> None:
    """The dashboard needs only the REST API: pointed at the engine's URL it shows its runs."""
    from devserver.dashboard import standalone_app

    event_id = demo_app.send("dash/hello", {"name": "Standalone"})
    run = demo_app.wait_run(event_id, {"Completed"})
    app = standalone_app(demo_app.engine.base_url, event_key=demo_app.engine.event_key)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
        runs = await client.get("/runs", params={"function": "dash-demo-dash-hello"})
        detail = await client.get(f"/runs/{run['run_id']}")
    await app.state.dashboard_client.aclose()
    assert f'data-run-id="{run["run_id"]}"' in runs.text
    assert detail.status_code == 200
    assert "Hello Standalone" in detail.text


def test_dashboard_apps_page_shows_a_failed_sync() -> None:
    from devserver.config import Settings
    from devserver.server import create_app
    from devserver.testing import serve_app
    from engine_client import free_port

    dead_url = f"http://127.0.0.1:{free_port()}/api/inngest"
    settings = Settings(in_memory=True, sdk_urls=[dead_url], poll=False, discovery=False)
    with serve_app(create_app(settings)) as base:
        deadline = time.monotonic() + 15
        page = ""
        while time.monotonic() < deadline:
            page = httpx.get(base + "/apps", timeout=10).text
            if "unreachable" in page:
                break
            time.sleep(0.1)
    row = page.split(f'data-app="{dead_url}"', 1)[1].split("</tr>", 1)[0]
    assert "error" in row and "unreachable" in row


def test_dashboard_works_when_the_devserver_enforces_keys() -> None:
    """Server kind `cloud` (signing + event keys): after logging in with the signing key, the
    dashboard authenticates to the engine like the SDK."""
    from devserver.config import Settings
    from devserver.server import create_app
    from devserver.testing import serve_app

    settings = Settings(
        in_memory=True,
        signing_key="signkey-test-" + "ab" * 32,
        event_keys=["dash-event-key"],
        discovery=False,
        poll=False,
    )
    with serve_app(create_app(settings)) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/v2/runs").status_code == 401  # REST needs the key
        assert http.get("/runs").status_code == 303  # and so does the dashboard: log in first
        login = http.post(
            "/login", data={"key": settings.signing_key or ""}, headers={"origin": base}
        )
        assert login.status_code == 303
        runs = http.get("/runs")
        sent = http.post(
            "/send",
            data={"event": '{"name": "dash/keyed-engine", "data": {"n": 1}}'},
            headers={"origin": base},
        )
        events = http.get("/events")
    assert runs.status_code == 200 and "The engine answered" not in runs.text
    assert sent.status_code == 303
    assert "msg=sent+dash%2Fkeyed-engine" in sent.headers["location"]
    assert 'data-event-name="dash/keyed-engine"' in events.text
