"""Every `nerve send` row of the README's "Following the course" table, run as written against an
engine over real HTTP (the devserver by default) with the support worker and a stand-in risk
worker on a freshly seeded database: the course's hand-sent events produce a draft, a gated
refund, an applied approval and an applied rejection."""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import inngest
import pytest
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    send_events,
    serve_app,
    sync_app,
    wait_for_run,
)
from nerve_cli.main import app as nerve_cli
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import AuditLog, Draft, Message, RefundRequest
from shared_events import SCORE_REFUND_RISK, RiskAssessment
from sqlalchemy import select
from support_worker.app import create_app
from support_worker.settings import SupportSettings
from typer.testing import CliRunner

README = Path(__file__).resolve().parents[3] / "README.md"


def course_rows() -> list[tuple[str, list[str]]]:
    """(course step, nerve arguments) of each README table row whose command is `nerve send`."""
    section = README.read_text().split("## Following the course", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or "nerve send" not in line:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        found = re.search(r"`uv run nerve (send [^`]+)`", cells[2])
        assert found, f"no nerve send command in row {cells[0]!r}"
        rows.append((cells[0], shlex.split(found.group(1))))
    return rows


def stand_in_risk(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id=SCORE_REFUND_RISK.function_id, trigger=inngest.TriggerEvent(event="test/never")
    )
    async def score_refund_risk(ctx: inngest.Context) -> dict[str, Any]:
        request = SCORE_REFUND_RISK.parse_input(ctx.event.data)
        level = "high" if request.amount_cents >= 10_000 else "low"
        return RiskAssessment(score=0.9 if level == "high" else 0.1, level=level).model_dump()

    return [score_refund_risk]


@asynccontextmanager
async def platform(engine: EngineHandle, database_url: str) -> AsyncIterator[None]:
    risk = make_client(engine, SCORE_REFUND_RISK.app_id)
    settings = SupportSettings(
        environment="test",
        database_url=database_url,
        inngest_dev="1",
        inngest_base_url=engine.base_url,
        log_json=False,
        log_level="WARNING",
        refund_approval_timeout_seconds=120,
    )
    async with running_app(engine, risk, stand_in_risk(risk)):
        with serve_app(create_app(settings)) as base:
            await sync_app(engine, base + "/api/inngest")
            yield


async def eventually(read: Any, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await read()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached in time: {what}")


async def refund_status(db: Database, customer_id: str, order_id: str) -> str | None:
    async with db.session() as session:
        request = (
            await session.scalars(
                select(RefundRequest).where(
                    RefundRequest.customer_id == customer_id, RefundRequest.order_id == order_id
                )
            )
        ).first()
        return None if request is None else request.status


async def actions(db: Database, customer_id: str) -> list[str]:
    async with db.session() as session:
        rows = await session.scalars(
            select(AuditLog.action).where(AuditLog.customer_id == customer_id)
        )
        return list(rows.all())


@pytest.mark.timeout(600)
async def test_every_course_row_of_the_readme_works_as_written(
    inngest_engine: EngineHandle, fresh_database_url: str
) -> None:
    rows = course_rows()
    assert [step for step, _ in rows] == [
        "002 D2",
        "002 D5, refund",
        "002 D5, approve",
        "002 D5, second refund",
        "002 D5, reject",
    ]
    db = Database(fresh_database_url)
    runner = CliRunner()
    try:
        async with platform(inngest_engine, fresh_database_url):
            for step, arguments in rows:
                args = [
                    *arguments,
                    "--engine-url",
                    inngest_engine.base_url,
                    "--event-key",
                    inngest_engine.event_key,
                ]
                result = await asyncio.to_thread(
                    runner.invoke, nerve_cli, args, env={"COLUMNS": "200"}
                )
                assert result.exit_code == 0, f"{step}: {result.output}"
                await check(step, db)
    finally:
        await db.dispose()


async def check(step: str, db: Database) -> None:
    """What the course says each step shows."""
    if step == "002 D2":  # --wait returned: the run completed; the inline email was answered

        async def answered() -> Any:
            async with db.session() as session:
                return (
                    await session.execute(
                        select(Draft.status, Draft.body_text)
                        .join(Message, Message.id == Draft.message_id)
                        .where(
                            Message.customer_id == "cust_001",
                            Message.provider_message_id.like("inline-%"),
                        )
                    )
                ).first()

        status, body = await eventually(answered, "a draft for the inline email")
        assert status == "sent" and body.startswith("Hi ")
        seen = await actions(db, "cust_001")
        assert seen.count("message_received") == 1 and seen.count("message_sent") == 1
    elif step in ("002 D5, refund", "002 D5, second refund"):
        customer, order = (
            ("cust_002", "ord_1004") if "second" not in step else ("cust_001", "ord_1001")
        )

        async def waiting() -> bool:
            return await refund_status(db, customer, order) == "awaiting_approval"

        await eventually(waiting, f"{order} waiting for a reviewer")
    elif step == "002 D5, approve":

        async def issued() -> bool:
            return await refund_status(db, "cust_002", "ord_1004") == "issued"

        await eventually(issued, "ord_1004 refunded")
        assert (await actions(db, "cust_002")).count("refund_issued") == 1
    elif step == "002 D5, reject":
        # The decision makes the request `rejected` before the gate resumes and audits the
        # block (audit-refund-blocked): wait for both.
        async def rejected() -> bool:
            return await refund_status(db, "cust_001", "ord_1001") == "rejected" and (
                "refund_blocked" in await actions(db, "cust_001")
            )

        await eventually(rejected, "ord_1001 rejected and its block audited")
        seen = await actions(db, "cust_001")
        assert seen.count("refund_blocked") == 1 and "refund_issued" not in seen
    else:
        raise AssertionError(f"no expectation for course step {step!r}")


async def test_a_decision_naming_its_request_resumes_the_gate_without_breaking_it(
    inngest_engine: EngineHandle, fresh_database_url: str
) -> None:
    """`{request_id, approved}` (the concept chapters' shape) also matches the gate's request id;
    the gate ignores it (it is not the catalog shape) and resumes on the regular decision the
    hand-sent-decision function publishes."""
    db = Database(fresh_database_url)
    try:
        async with platform(inngest_engine, fresh_database_url):
            [email_event] = await send_events(
                inngest_engine,
                [
                    {
                        "name": "customer/email.received",
                        "data": {"email_text": "Please refund ord_1011", "customer_id": "cust_005"},
                        "id": f"course-{new_id('evt')}",
                    }
                ],
            )

            async def waiting() -> bool:
                return await refund_status(db, "cust_005", "ord_1011") == "awaiting_approval"

            await eventually(waiting, "ord_1011 waiting for a reviewer")
            async with db.session() as session:
                request_id = (
                    await session.scalars(
                        select(RefundRequest.id).where(RefundRequest.order_id == "ord_1011")
                    )
                ).one()
            await send_events(
                inngest_engine,
                [
                    {
                        "name": "refund/approval.decided",
                        "data": {"request_id": request_id, "approved": True},
                        "id": f"course-{new_id('evt')}",
                    }
                ],
            )
            run = await wait_for_run(inngest_engine, email_event, timeout=120)
        assert run["output"]["refunds"] == {"ord_1011": "issued"}
        assert await refund_status(db, "cust_005", "ord_1011") == "issued"
    finally:
        await db.dispose()
