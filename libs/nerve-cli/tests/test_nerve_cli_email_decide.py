"""`nerve email` and `nerve decide` against a local stand-in for the gateway's public endpoints."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from nerve_cli.main import app
from nerve_cli.testing import serve_asgi
from service_kit.decision_tokens import InvalidDecisionToken, read_decision_token
from typer.testing import CliRunner

runner = CliRunner()
SECRET = "test-decision-secret"


@pytest.fixture
def gateway() -> Any:
    with stand_in_gateway(SECRET) as running:
        yield running


@contextlib.contextmanager
def stand_in_gateway(secret: str) -> Any:
    received: dict[str, list[Any]] = {"postmark": [], "decisions": []}
    api = FastAPI()

    @api.post("/webhooks/postmark/inbound")
    async def inbound(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        if auth != "Basic " + base64.b64encode(b"pm-user:pm-pass").decode():
            return JSONResponse({"detail": "bad credentials"}, 401)
        received["postmark"].append(await request.json())
        return {"status": "accepted"}

    @api.post("/decisions/{token}")
    async def decision(token: str, request: Request) -> Any:
        try:
            claims = read_decision_token(secret, token)
        except InvalidDecisionToken as error:
            return JSONResponse({"detail": str(error)}, 401)
        received["decisions"].append((claims, await request.json()))
        return {"status": "recorded"}

    with serve_asgi(api) as url:
        yield url, received


def test_email_posts_a_postmark_webhook_with_a_stable_message_id(gateway) -> None:
    url, received = gateway
    args = [
        "email",
        "--from",
        "ada@example.com",
        "--body",
        "refund ord_1001 please",
        "--idempotency-key",
        "k-1",
        "--gateway-url",
        url,
        "--postmark-user",
        "pm-user",
        "--postmark-password",
        "pm-pass",
    ]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    [a, b] = received["postmark"]
    assert a["MessageID"] == b["MessageID"]  # same key -> same id -> the gateway dedups
    assert a["FromFull"]["Email"] == "ada@example.com"
    assert a["TextBody"] == "refund ord_1001 please"
    assert {"From", "Subject", "Date", "HtmlBody", "Headers", "ToFull"} <= set(a)
    assert f"event_id=postmark-{a['MessageID']}" in first.output


def test_email_resolves_the_customer_from_the_database(gateway, tmp_path: Path) -> None:
    url, received = gateway
    db = tmp_path / "nerve.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO customers VALUES ('cust_002', 'grace@example.com')")
    result = runner.invoke(
        app,
        [
            "email",
            "--customer-id",
            "cust_002",
            "--gateway-url",
            url,
            "--database-url",
            f"sqlite+aiosqlite:///{db}",
            "--postmark-user",
            "pm-user",
            "--postmark-password",
            "pm-pass",
        ],
    )
    assert result.exit_code == 0, result.output
    assert received["postmark"][0]["From"] == "grace@example.com"
    missing = runner.invoke(
        app,
        [
            "email",
            "--customer-id",
            "cust_404",
            "--gateway-url",
            url,
            "--database-url",
            f"sqlite+aiosqlite:///{db}",
        ],
    )
    assert missing.exit_code == 2 and "cust_404" in missing.output


def test_email_rejected_by_the_gateway_exits_non_zero(gateway) -> None:
    url, received = gateway
    result = runner.invoke(
        app,
        [
            "email",
            "--from",
            "a@example.com",
            "--gateway-url",
            url,
            "--postmark-user",
            "pm-user",
            "--postmark-password",
            "wrong",
        ],
    )
    assert result.exit_code == 1 and "401" in result.output
    assert received["postmark"] == []


def test_decide_signs_a_single_use_token_and_posts_the_decision(gateway) -> None:
    url, received = gateway
    result = runner.invoke(
        app,
        [
            "decide",
            "edit",
            "esc_42",
            "--kind",
            "escalation",
            "--reviewer",
            "grace",
            "--text",
            "Edited reply",
            "--gateway-url",
            url,
            "--secret",
            SECRET,
        ],
    )
    assert result.exit_code == 0, result.output
    [(claims, body)] = received["decisions"]
    assert (claims.kind, claims.request_id, claims.reviewer) == ("escalation", "esc_42", "grace")
    assert body == {"decision": "edit", "edited_text": "Edited reply"}


def test_decide_reads_the_kind_from_the_request_id(gateway) -> None:
    # `nerve pending` hints `nerve decide approve <request id>`: for an escalation id that must
    # sign an escalation decision, not a refund one.
    url, received = gateway
    for request_id, kind in (("esc_01JESCALATION", "escalation"), ("rfr_01JREFUND", "refund")):
        result = runner.invoke(
            app,
            ["decide", "approve", request_id, "--gateway-url", url, "--secret", SECRET],
        )
        assert result.exit_code == 0, result.output
        assert f"approve recorded for {kind} {request_id}" in result.output
    assert [(c.kind, c.request_id) for c, _ in received["decisions"]] == [
        ("escalation", "esc_01JESCALATION"),
        ("refund", "rfr_01JREFUND"),
    ]


def test_decide_refuses_incoherent_requests_before_calling_anyone(gateway) -> None:
    url, received = gateway
    for args in (
        ["decide", "maybe", "rfr_1"],
        ["decide", "edit", "esc_1", "--kind", "escalation"],  # edit without text
        ["decide", "edit", "rfr_1", "--text", "x"],  # refunds are not edited
        ["decide", "approve"],  # neither a request id nor a link
        ["decide", "approve", "rr_1"],  # neither a refund nor an escalation id
        ["decide", "approve", "esc_1", "--kind", "refund"],  # the flag contradicts the id
    ):
        result = runner.invoke(
            app, [*args, "--gateway-url", url], env={"DECISION_TOKEN_SECRET": ""}
        )
        assert result.exit_code == 2, (args, result.output)
    assert received["decisions"] == []


def test_decide_with_a_forged_link_is_refused(gateway) -> None:
    url, _ = gateway
    result = runner.invoke(app, ["decide", "approve", "--link", f"{url}/decisions/forged"])
    assert result.exit_code == 1 and "401" in result.output


def test_decide_without_a_secret_uses_the_nerve_dev_default() -> None:
    from nerve_cli.stack import DEV_DEFAULTS

    with stand_in_gateway(DEV_DEFAULTS["DECISION_TOKEN_SECRET"]) as (url, received):
        result = runner.invoke(
            app,
            ["decide", "reject", "rfr_9", "--gateway-url", url],
            env={"DECISION_TOKEN_SECRET": ""},
        )
    assert result.exit_code == 0, result.output
    [(claims, body)] = received["decisions"]
    assert claims.request_id == "rfr_9" and body == {"decision": "reject"}


def test_email_wait_finds_the_gateways_event_and_prints_the_completed_run(fake_engine) -> None:
    """The gateway publishes `customer/email.received` with id `postmark-{MessageID}`; the CLI
    finds that event by its id among the engine's events and waits for its run."""
    api = FastAPI()

    @api.post("/webhooks/postmark/inbound")
    async def inbound(request: Request) -> Any:
        message_id = (await request.json())["MessageID"]
        internal = f"01EMAIL{len(fake_engine.events):019d}"
        fake_engine.events.append(
            {
                "internal_id": internal,
                "id": f"postmark-{message_id}",
                "name": "customer/email.received",
                "data": {},
            }
        )
        fake_engine.add_run(
            "01RUNEMAIL0000000000000001",
            "support-worker/handle-customer-email",
            "COMPLETED",
            "2026-01-01T00:00:00Z",
            event_ids=[internal],
        )
        return {"status": "accepted"}

    # an earlier email of another message: its run must not be reported
    fake_engine.events.append(
        {"internal_id": "01EOTHER", "id": "postmark-other", "name": "customer/email.received"}
    )
    fake_engine.add_run(
        "01RUNOTHER",
        "support-worker/handle-customer-email",
        "FAILED",
        "2026-01-01T00:00:00Z",
        event_ids=["01EOTHER"],
    )
    with serve_asgi(api) as url:
        result = runner.invoke(
            app,
            [
                "email",
                "--from",
                "ada@example.com",
                "--gateway-url",
                url,
                "--wait",
                "--timeout",
                "10",
                "--engine-url",
                fake_engine.base_url,
            ],
        )
    assert result.exit_code == 0, result.output
    assert "01RUNEMAIL0000000000000001" in result.output and "COMPLETED" in result.output
    assert "01RUNOTHER" not in result.output and "timed out" not in result.output


def test_pending_lists_requests_with_whole_ids_and_as_json(tmp_path: Path) -> None:
    db = tmp_path / "nerve.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE refund_requests (id TEXT, customer_id TEXT, amount_cents INT, "
            "currency TEXT, status TEXT, created_at TEXT)"
        )
        conn.execute(
            "CREATE TABLE escalations (id TEXT, customer_id TEXT, status TEXT, created_at TEXT)"
        )
        conn.execute(
            "INSERT INTO refund_requests VALUES "
            "('rfr_0123456789abcdef0123456789', 'cust_001', 12500, 'usd', 'pending', '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO escalations VALUES ('esc_42', 'cust_002', 'pending', '2026-01-02')"
        )
        conn.execute(
            "INSERT INTO escalations VALUES ('esc_done', 'cust_002', 'approved', '2026-01-02')"
        )
    url = f"sqlite+aiosqlite:///{db}"
    listed = runner.invoke(app, ["pending", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    assert "rfr_0123456789abcdef0123456789" in listed.output and "esc_done" not in listed.output
    as_json = runner.invoke(app, ["pending", "--database-url", url, "--json"])
    rows = json.loads(as_json.stdout)
    assert [(r["kind"], r["id"], r["amount"]) for r in rows] == [
        ("refund", "rfr_0123456789abcdef0123456789", "125.00 USD"),
        ("escalation", "esc_42", ""),
    ]
