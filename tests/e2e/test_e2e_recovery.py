"""Scenarios 2, 9 and 11: break and recover with a bulk rerun, an engine outage, a new service."""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_client import RunStatus, free_port
from nerve_cli.main import app as nerve
from nerve_cli.stack import ManagedProcess
from nerve_cli.testing import serve_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

HANDLE_EMAIL = "support-worker-handle-customer-email"
CUSTOMERS = {
    "cust_001": "ada@example.com",
    "cust_002": "grace@example.com",
    "cust_003": "linus@example.com",
    "cust_004": "edsger@example.com",
    "cust_005": "alan@example.com",
}
runner = CliRunner()


def cli(platform: Any, *args: str) -> Any:
    return runner.invoke(nerve, [*args, *platform.engine_flags])


def test_agent_outage_runs_fail_memoized_then_one_bulk_rerun_recovers_all(platform) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    # Break: the agent's model provider is down (an OpenAI-compatible endpoint answering 503;
    # retry-after-ms keeps the OpenAI client's own retries short).
    outage = Starlette(routes=[Route("/{path:path}", _unavailable, methods=["GET", "POST"])])
    with serve_asgi(outage) as provider_url:
        platform.stack.restart_service(
            "support-worker",
            # A fresh key: production mode refuses short or published ones.
            env={
                "OPENAI_API_KEY": f"sk-e2e-{secrets.token_hex(24)}",
                "OPENAI_BASE_URL": f"{provider_url}/v1",
            },
        )
        try:
            sent = _five_emails_fail_with_memoized_steps(platform)
        finally:
            # The fix: the worker is redeployed with a working model (the offline one).
            platform.stack.restart_service("support-worker", env={})

    result = cli(platform, "rerun", "--function", HANDLE_EMAIL, "--since", started.isoformat())
    assert result.exit_code == 0, result.output
    assert f"{len(sent)} rerun(s) started" in result.output

    for customer, event_id in sent.items():
        message_id = platform.message_id_for(event_id.removeprefix("postmark-"))

        def counts(message_id: str = message_id) -> dict[str, int]:
            rows = platform.sql(
                "SELECT action, count(*) AS n FROM audit_log WHERE key LIKE :k GROUP BY action",
                k=f"%{message_id}%",
            )
            return {str(row["action"]): int(row["n"]) for row in rows}

        platform.wait_until(
            lambda counts=counts: counts().get("message_sent") == 1,
            timeout=90,
            what=f"the rerun for {customer}",
        )
        assert len(platform.drafts_for_message(message_id)) == 1
        audit = counts()
        assert audit.get("message_received") == 1 and audit.get("message_sent") == 1, audit
        assert all(n == 1 for n in audit.values()), audit


def _five_emails_fail_with_memoized_steps(platform: Any) -> dict[str, str]:
    sent: dict[str, str] = {}
    for customer, address in CUSTOMERS.items():
        response, event_id = platform.postmark(address, "Can you check my last invoice?")
        assert response.status_code == 200
        sent[customer] = event_id
    failed = []
    for event_id in sent.values():
        [run] = [
            r
            for r in platform.wait_event_runs(event_id, timeout=120)
            if r.function_slug == HANDLE_EMAIL
        ]
        assert run.status is RunStatus.FAILED, run
        failed.append(run)
    # Memoized: the audit step ran once; only the agent step was retried.
    steps = platform.engine.run_trace(failed[0].run_id).steps
    attempts = {step.name: step.attempts for step in steps}
    assert attempts.get("audit-received") == 1, attempts
    assert attempts.get("run-agent", 0) > 1, attempts
    return sent


async def _unavailable(request: Request) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": "provider down", "type": "server_error"}},
        status_code=503,
        headers={"retry-after-ms": "1"},
    )


def test_engine_outage_webhooks_accepted_then_delivered_exactly_once(platform) -> None:
    if not platform.owns_engine:
        pytest.skip(
            f"kills and restarts the engine: only where the harness started it (devserver, "
            f"binary); the e2e cannot restart the {platform.engine_kind} engine it was given"
        )
    prefix = f"evt_outage_{uuid.uuid4().hex[:8]}"
    platform.stack.kill_engine()  # the engine dies without warning
    try:

        def post(index: int) -> int:
            response, _ = platform.stripe(
                "charge.refunded",
                {
                    "id": "ch_seed_1010",
                    "object": "charge",
                    "amount_refunded": 100 + index,
                    "currency": "usd",
                },
                event_id=f"{prefix}_{index:03d}",
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(post, range(100)))
        assert statuses == [200] * 100
    finally:
        platform.stack.start_engine()

    def delivered() -> list[str] | None:
        events = platform.engine.list_events(name="stripe/charge.refunded", limit=1000)
        ids = [e["id"] for e in events if str(e.get("id", "")).startswith(prefix)]
        return ids if len(ids) >= 100 else None

    try:
        ids = platform.wait_until(delivered, timeout=60, what="100 events after the outage")
    except AssertionError as error:
        # Say where they are: still in the gateway's outbox, or sent but not listed.
        outbox = platform.sql(
            "SELECT status, count(*) AS n FROM outbox WHERE event_id LIKE :p GROUP BY status",
            p=f"%{prefix}%",
        )
        events = platform.engine.list_events(name="stripe/charge.refunded", limit=1000)
        listed = sum(str(e.get("id", "")).startswith(prefix) for e in events)
        raise AssertionError(f"{error}; outbox {outbox}; {listed} listed by the engine") from None
    assert len(ids) == 100 and len(set(ids)) == 100
    pending = platform.sql(
        "SELECT count(*) AS n FROM outbox WHERE event_id LIKE :p AND status <> 'published'",
        p=f"%{prefix}%",
    )
    assert pending[0]["n"] == 0


def test_a_scaffolded_service_subscribes_to_a_catalog_event_and_runs(
    platform, tmp_path: Path
) -> None:
    result = runner.invoke(
        nerve,
        ["new-service", "loyalty-worker", "--dest", str(tmp_path), "--event", "ticket/resolved"],
    )
    assert result.exit_code == 0, result.output
    port = free_port()
    env = {
        **platform.new_service_env(port),
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path / "loyalty-worker" / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    process = ManagedProcess(
        "loyalty-worker",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "loyalty_worker.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        tmp_path / "loyalty-worker.log",
        cwd=tmp_path,
    )
    process.start()
    try:
        platform.wait_until(
            lambda: _ready(f"http://127.0.0.1:{port}/readyz") or not process.alive,
            timeout=90,
            what="the new service",
        )
        assert process.alive, process.log_tail()
        import httpx

        assert httpx.put(f"http://127.0.0.1:{port}/api/inngest", timeout=15).status_code == 200
        ticket = f"tkt_e2e_{uuid.uuid4().hex[:6]}"
        sent = cli(
            platform,
            "send",
            "ticket/resolved",
            "-f",
            f"ticket_id={ticket}",
            "-f",
            "customer_id=cust_001",
            "-f",
            "resolved_by=e2e",
            "--id",
            f"resolved-{ticket}",
        )
        assert sent.exit_code == 0, sent.output
        runs = platform.wait_until(
            lambda: [
                r
                for r in platform.event_runs(f"resolved-{ticket}", "ticket/resolved")
                if r.function_slug == "loyalty-worker-on-ticket-resolved"
                and r.status is RunStatus.COMPLETED
            ],
            timeout=60,
            what="the new service's run",
        )
        detail = platform.engine.get_run(runs[0].run_id)
        assert detail.output == {
            "handled": "ticket/resolved",
            "summary": "loyalty-worker saw it",
        }
    finally:
        process.stop()


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
