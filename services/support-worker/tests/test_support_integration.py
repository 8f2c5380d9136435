"""The support worker against an Inngest engine over real HTTP (the devserver by default, or
INNGEST_BASE_URL), on SQLite and Postgres: the course's proofs.

- happy path: three audit rows in order, the draft saved;
- crash proof: the agent step fails on every retry while audit-received stays memoized; after
  the fix a rerun from the top completes, and each message still has exactly one
  message_received and one message_sent row (natural keys);
- refund gate: approve -> exactly one refund_issued; reject -> one refund_blocked, no refund.

A tiny stand-in `risk-worker` app (the `risk_worker` fixture) serves `score-refund-risk` (same
contract as shared_events.SCORE_REFUND_RISK) so the invoke crosses apps for real. Many emails
racing for one order: `test_support_integration_refund_races.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from devserver.testing import EngineHandle, wait_for_run, wait_for_run_id
from service_kit.db import Database
from service_kit.models import AuditLog, Draft, RefundRequest
from sqlalchemy import select
from support_live import (
    decide_like_the_gateway,
    send_email_event,
    serve_with_short_refund_wait,
    wait_for_pending_approvals,
)


async def audit_rows(db: Database, message_or_customer: str) -> list[tuple[str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(AuditLog.action, AuditLog.key)
            .where(AuditLog.customer_id == message_or_customer)
            .order_by(AuditLog.created_at, AuditLog.id)
        )
        return [(row[0], row[1]) for row in rows.all()]


async def test_happy_path_three_audit_rows_in_order_and_draft_saved(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Invoice", "Where is my invoice?", "enterprise", (2000,))
    async with serve_with_short_refund_wait(inngest_engine, database_url):
        event_id = await send_email_event(inngest_engine, convo)
        run = await wait_for_run(inngest_engine, event_id, timeout=60)
    assert run["output"]["status"] == "replied"
    assert [action for action, _ in await audit_rows(db, convo.customer_id)] == [
        "message_received",
        "draft_saved",
        "message_sent",
    ]
    async with db.session() as session:
        draft = (
            await session.scalars(select(Draft).where(Draft.message_id == convo.message_id))
        ).one()
    assert draft.status == "sent" and draft.body_text.startswith("Hi Test")


async def test_crash_then_rerun_from_the_top_keeps_one_row_per_action(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
    fake_openai: Any,
) -> None:
    convo = await make_conversation(db, "Login", "I cannot log in.", "pro", (2000,))
    fake_openai.fail_status = 400  # the model call (inside run-agent) fails on every attempt
    async with serve_with_short_refund_wait(
        inngest_engine,
        database_url,
        openai_api_key="sk-test-fake-key",
        openai_base_url=fake_openai.base_url,
    ):
        event_id = await send_email_event(inngest_engine, convo)
        failed = await wait_for_run(inngest_engine, event_id, status={"Failed"}, timeout=90)
        attempts = len(fake_openai.chat_requests)
        assert attempts >= 2, "the agent step should have been retried"
        assert [a for a, _ in await audit_rows(db, convo.customer_id)] == ["message_received"]
        # The memoized step ran once and stays done while run-agent fails (the real trace
        # shape: step spans under rootSpan.children).
        spans = await _step_spans(inngest_engine, failed["run_id"])
        audit_spans = [span for span in spans if span["name"] == "audit-received"]
        assert [span["status"] for span in audit_spans] == ["COMPLETED"]

        # The fix: the model answers again. Rerun the failed run from the top.
        fake_openai.fail_status = None
        fake_openai.script_tool_call("look_up_customer", {}, "call_1")
        fake_openai.script_reply("Hi Test, here is how to reset your login.")
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{inngest_engine.base_url}/v2/runs/{failed['run_id']}/rerun",
                headers=inngest_engine.headers,
                json={},
            )
        response.raise_for_status()
        new_run_id = response.json()["data"]["runId"]
        rerun = await wait_for_run_id(inngest_engine, new_run_id, timeout=60)
    assert rerun["output"]["status"] == "replied"
    actions = [a for a, _ in await audit_rows(db, convo.customer_id)]
    assert actions.count("message_received") == 1
    assert actions.count("message_sent") == 1
    assert actions == ["message_received", "draft_saved", "message_sent"]


async def _step_spans(engine: EngineHandle, run_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(
            f"{engine.base_url}/v2/runs/{run_id}/trace", headers=engine.headers
        )
    response.raise_for_status()
    children: list[dict[str, Any]] = response.json()["data"]["rootSpan"].get("children", [])
    return children


@pytest.mark.parametrize("approved", [True, False], ids=["approve", "reject"])
async def test_refund_gate_decision_over_http(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
    risk_worker: None,
    approved: bool,
) -> None:
    convo = await make_conversation(db, "Refund", "Please refund {order}", "pro", (25_000,))
    async with serve_with_short_refund_wait(inngest_engine, database_url):
        event_id = await send_email_event(inngest_engine, convo)
        [request_id] = await wait_for_pending_approvals(db, convo.customer_id, 1)
        await decide_like_the_gateway(inngest_engine, db, request_id, approved)
        run = await wait_for_run(inngest_engine, event_id, timeout=60)

    order_id = convo.order_ids[-1]
    assert run["output"]["refunds"] == {order_id: "issued" if approved else "rejected"}
    actions = [a for a, _ in await audit_rows(db, convo.customer_id)]
    async with db.session() as session:
        refund = await session.get(RefundRequest, request_id)
    assert refund is not None
    if approved:
        assert actions.count("refund_issued") == 1 and "refund_blocked" not in actions
        assert refund.status == "issued" and refund.provider_refund_id
    else:
        assert actions.count("refund_blocked") == 1 and "refund_issued" not in actions
        assert refund.status == "rejected" and refund.provider_refund_id is None
    assert actions[-2:] == ["draft_saved", "message_sent"]
