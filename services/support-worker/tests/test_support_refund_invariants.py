"""Refunds never exceed what was paid, at the repository level, on SQLite and Postgres.

Many approved requests for one order race to be issued on their own sessions (connections) at
once: the order's refunded total never goes above its amount, and every request ends exactly
once (issued, or blocked with an audited reason), never both and never twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import AuditLog, Order, RefundRequest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from support_worker.payments import LocalLedgerPayments
from support_worker.repositories import AuditContext, RefundRepository

CTX = AuditContext(run_id="run-test", function_id="test")
ATTEMPTS = 10


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def approved_requests(
    db: Database, make_conversation: Any, order_amount: int, amounts: list[int | None]
) -> tuple[str, str, list[str]]:
    """A customer with one order of `order_amount` and one approved refund request per amount
    (None: the whole refundable amount), all created before any is issued (as concurrent emails
    do). Returns (customer id, order id, request ids)."""
    convo = await make_conversation(db, "Refund", "Refund {order}", "pro", (order_amount,))
    order_id = convo.order_ids[-1]
    repo = RefundRepository(db)
    request_ids = []
    for amount in amounts:
        record = await repo.create_refund_request(
            key=f"refund-{new_id('msg')}-{order_id}",
            customer_id=convo.customer_id,
            order_id=order_id,
            ticket_id=convo.ticket_id,
            message_id=None,
            amount_cents=amount,
            reason="test",
            ctx=CTX,
        )
        assert record is not None
        await repo.record_risk(record.request_id, score=0.1, level="low", reasons=[], auto=True)
        request_ids.append(record.request_id)
    return convo.customer_id, order_id, request_ids


async def issue(repo: RefundRepository, payments: LocalLedgerPayments, request_id: str) -> str:
    """What the refund gate does once a request is approved: hold, call the provider, record."""
    held = await repo.reserve_refund(request_id, ctx=CTX)
    if not held.reserved:
        return held.request.status
    receipt = await payments.refund(
        idempotency_key=request_id,
        charge_id=held.request.charge_id,
        amount_cents=held.request.amount_cents,
        currency=held.request.currency,
    )
    await repo.mark_refund_issued(
        request_id, provider_refund_id=receipt.provider_refund_id, ctx=CTX
    )
    return "issued"


async def outcome(db: Database, customer_id: str, order_id: str) -> dict[str, Any]:
    async with db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        statuses = dict(
            (
                await session.execute(
                    select(RefundRequest.id, RefundRequest.status).where(
                        RefundRequest.order_id == order_id
                    )
                )
            ).all()
        )
        issued_sum = sum(
            (
                await session.scalars(
                    select(RefundRequest.amount_cents).where(
                        RefundRequest.order_id == order_id, RefundRequest.status == "issued"
                    )
                )
            ).all()
        )
        audit = (
            await session.execute(
                select(AuditLog.action, AuditLog.payload).where(
                    AuditLog.customer_id == customer_id,
                    AuditLog.action.in_(("refund_issued", "refund_blocked")),
                )
            )
        ).all()
    endings = Counter(str(payload["request_id"]) for _, payload in audit)
    return {
        "amount": order.amount_cents,
        "refunded": order.refunded_cents,
        "issued_sum": issued_sum,
        "statuses": statuses,
        "endings": endings,
        "actions": Counter(action for action, _ in audit),
        "blocked_reasons": [p.get("reason", "") for a, p in audit if a == "refund_blocked"],
    }


async def test_concurrent_full_refunds_of_one_order_issue_exactly_one(
    db: Database, make_conversation: Any
) -> None:
    customer_id, order_id, request_ids = await approved_requests(
        db, make_conversation, 2_999, [None] * ATTEMPTS
    )
    repo, payments = RefundRepository(db), LocalLedgerPayments()

    results = await asyncio.gather(*(issue(repo, payments, rid) for rid in request_ids))

    seen = await outcome(db, customer_id, order_id)
    assert Counter(results) == {"issued": 1, "exceeds_refundable": ATTEMPTS - 1}
    assert seen["refunded"] == seen["issued_sum"] == seen["amount"] == 2_999
    assert len(payments.entries) == 1  # the provider was called for one request only
    # Every request ended exactly once: one audited ending each, never issued and blocked.
    assert seen["endings"] == dict.fromkeys(request_ids, 1)
    assert seen["actions"] == {"refund_issued": 1, "refund_blocked": ATTEMPTS - 1}
    assert all("0 of 2999 cents left" in reason for reason in seen["blocked_reasons"])


async def test_concurrent_partial_refunds_stop_at_the_amount_paid(
    db: Database, make_conversation: Any
) -> None:
    customer_id, order_id, request_ids = await approved_requests(
        db, make_conversation, 12_000, [5_000] * ATTEMPTS
    )
    repo, payments = RefundRepository(db), LocalLedgerPayments()

    results = await asyncio.gather(*(issue(repo, payments, rid) for rid in request_ids))

    seen = await outcome(db, customer_id, order_id)
    assert Counter(results) == {"issued": 2, "exceeds_refundable": ATTEMPTS - 2}
    assert seen["refunded"] == seen["issued_sum"] == 10_000 <= seen["amount"]
    assert seen["endings"] == dict.fromkeys(request_ids, 1)


async def test_a_retried_hold_reuses_itself_and_a_provider_refusal_gives_the_amount_back(
    db: Database, make_conversation: Any
) -> None:
    customer_id, order_id, [first, second] = await approved_requests(
        db, make_conversation, 4_000, [None, None]
    )
    repo = RefundRepository(db)
    held = await repo.reserve_refund(first, ctx=CTX)
    again = await repo.reserve_refund(first, ctx=CTX)  # the step retried after a crash
    assert held.reserved and again.reserved and again.refunded_cents == 4_000

    released = await repo.release_refund(first, error="card closed", decided_by="auto", ctx=CTX)
    assert released
    assert not await repo.release_refund(first, error="again", decided_by="auto", ctx=CTX)
    assert (await repo.reserve_refund(first, ctx=CTX)).request.status == "failed"

    # The amount went back to the order, so the other request can now be issued.
    assert await issue(repo, LocalLedgerPayments(), second) == "issued"
    seen = await outcome(db, customer_id, order_id)
    assert seen["statuses"] == {first: "failed", second: "issued"}
    assert seen["refunded"] == 4_000
    assert seen["endings"] == {first: 1, second: 1}


async def test_a_rejected_request_is_never_audited_as_issued_or_blocked_twice(
    db: Database, make_conversation: Any
) -> None:
    customer_id, order_id, [request_id] = await approved_requests(
        db, make_conversation, 1_500, [None]
    )
    repo = RefundRepository(db)
    assert await issue(repo, LocalLedgerPayments(), request_id) == "issued"
    # A late "blocked" for a request that was issued is refused: never both.
    assert not await repo.mark_refund_blocked(
        request_id, outcome="rejected", decided_by="rev", ctx=CTX
    )
    seen = await outcome(db, customer_id, order_id)
    assert seen["actions"] == {"refund_issued": 1}


async def test_the_database_refuses_a_refunded_total_above_the_amount(
    db: Database, make_conversation: Any
) -> None:
    convo = await make_conversation(db, "Refund", "Refund {order}", "pro", (2_000,))
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(
                update(Order).where(Order.id == convo.order_ids[-1]).values(refunded_cents=2_001)
            )


class ProviderDown:
    """A payment provider that cannot be reached (a transient error, not a refusal)."""

    name = "down"

    async def refund(self, **_: Any) -> Any:
        raise ConnectionError("provider unreachable")


def test_a_run_that_died_after_the_hold_is_finished_by_a_rerun_without_a_second_hold(
    harness: Any,
) -> None:
    """The provider is unreachable after the amount was held: the run fails with the hold in
    place (nothing refunded, nothing lost). A rerun from the top finds the request `issuing`,
    re-uses the hold and calls the provider with the same idempotency key."""
    from inngest.experimental import mocked

    convo = harness.conversation(subject="Refund", body="Refund {order}", order_amounts=(2_500,))
    order_id = convo.order_ids[-1]
    stubs = {f"score-refund-risk-{order_id}": {"score": 0.1, "level": "low", "reasons": []}}
    ledger = harness.deps.payments
    harness.replace_deps(payments=ProviderDown())
    failed = harness.trigger("handle-customer-email", convo.event(), stubs=stubs)
    assert failed.status is mocked.Status.FAILED

    async def state() -> tuple[str, int]:
        async with harness.db.session() as session:
            request = (
                await session.scalars(
                    select(RefundRequest).where(RefundRequest.order_id == order_id)
                )
            ).one()
            order = await session.get(Order, order_id)
            assert order is not None
            return request.status, order.refunded_cents

    assert harness.run(state()) == ("issuing", 2_500)  # held, not issued

    harness.replace_deps(payments=ledger)
    rerun = harness.trigger("handle-customer-email", convo.event(), stubs=stubs)
    assert rerun.status is mocked.Status.COMPLETED, rerun.error
    assert rerun.output["refunds"] == {order_id: "issued"}
    assert harness.run(state()) == ("issued", 2_500)  # the same hold, not a second one
    [request_id] = ledger.entries
    seen = harness.run(outcome(harness.db, convo.customer_id, order_id))
    assert seen["endings"] == {request_id: 1}
