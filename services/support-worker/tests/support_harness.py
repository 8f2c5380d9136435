"""The support worker's functions under `inngest.experimental.mocked`, on a real database:
the harness the flow tests drive (`harness.trigger(fn_id, event, stubs)`), fresh conversations
as the gateway stores them, and the reads the tests check rows with."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import inngest
from inngest.experimental import mocked
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import AuditLog, Customer, Message, Order, Ticket
from shared_events import CustomerEmailReceived
from sqlalchemy import select
from support_worker.deps import FlowConfig, SupportWorkerDeps
from support_worker.embeddings import LocalHashEmbedder
from support_worker.functions import APP_ID, create_functions
from support_worker.payments import LocalLedgerPayments

T = TypeVar("T")


class RecordingClient(mocked.Inngest):
    """The mocked client, remembering every event the functions sent."""

    def __init__(self) -> None:
        super().__init__(app_id=APP_ID, is_production=False)
        self.sent: list[inngest.Event] = []

    async def send(
        self, events: inngest.Event | list[inngest.Event], *, skip_middleware: bool = False
    ) -> list[str]:
        batch = events if isinstance(events, list) else [events]
        self.sent.extend(batch)
        return [event.id or "" for event in batch]

    def sent_named(self, name: str) -> list[inngest.Event]:
        return [event for event in self.sent if event.name == name]


@dataclass
class Conversation:
    customer_id: str
    ticket_id: str
    message_id: str
    order_ids: list[str]
    tier: str

    def event(self) -> inngest.Event:
        data = CustomerEmailReceived(
            message_id=self.message_id,
            provider_message_id=f"pm-{self.message_id}",
            customer_id=self.customer_id,
            customer_tier=self.tier,
            ticket_id=self.ticket_id,
            received_at=datetime.now(UTC),
        )
        return data.to_event(id=f"postmark-{self.message_id}")


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    db: Database
    deps: SupportWorkerDeps
    client: RecordingClient
    functions: dict[str, inngest.Function[Any]]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def replace_deps(self, **changes: Any) -> None:
        """Swap dependencies (`model=...`, `payments=...`): the deps are frozen, so the functions
        are built again with the new ones, as the app would build them."""
        self.deps = dataclasses.replace(self.deps, **changes)
        self.functions = {fn.local_id: fn for fn in create_functions(self.client, self.deps)}

    def trigger(
        self,
        fn_id: str,
        events: inngest.Event | list[inngest.Event],
        stubs: dict[str, object] | None = None,
    ) -> Any:
        return mocked.trigger(self.functions[fn_id], events, self.client, step_stubs=stubs or {})

    def conversation(
        self,
        *,
        subject: str,
        body: str,
        tier: str = "pro",
        order_amounts: tuple[int, ...] = (2_000, 20_000),
    ) -> Conversation:
        return self.run(create_conversation(self.db, subject, body, tier, order_amounts))


async def create_conversation(
    db: Database, subject: str, body: str, tier: str, order_amounts: tuple[int, ...]
) -> Conversation:
    """A fresh customer (unique ids), orders, a ticket and the inbound message, as the gateway
    would have stored them."""
    customer_id = new_id("cust")
    ticket_id = new_id("tkt")
    message_id = new_id("msg")
    order_ids = [new_id("ord") for _ in order_amounts]
    async with db.transaction() as session:
        session.add(
            Customer(
                id=customer_id, email=f"{customer_id}@example.com", name="Test Person", tier=tier
            )
        )
        await session.flush()
        for order_id, amount in zip(order_ids, order_amounts, strict=True):
            session.add(
                Order(
                    id=order_id,
                    customer_id=customer_id,
                    amount_cents=amount,
                    currency="usd",
                    stripe_charge_id=f"ch_{order_id}",
                )
            )
        session.add(Ticket(id=ticket_id, customer_id=customer_id, subject=subject))
        await session.flush()
        session.add(
            Message(
                id=message_id,
                ticket_id=ticket_id,
                customer_id=customer_id,
                direction="inbound",
                provider_message_id=f"pm-{message_id}",
                subject=subject,
                body_text=body.replace("{order}", order_ids[-1]),
                received_at=datetime.now(UTC),
            )
        )
    return Conversation(customer_id, ticket_id, message_id, order_ids, tier)


def fast_flow() -> FlowConfig:
    return FlowConfig(refund_auto_approve_max_cents=5_000)


@contextmanager
def open_harness(database_url: str) -> Iterator[Harness]:
    # mocked.trigger drives the async functions on the thread's current event loop, so the test
    # is sync and owns that loop; the database engine lives on it too.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    db = Database(database_url)
    deps = SupportWorkerDeps(
        db=db, flow=fast_flow(), payments=LocalLedgerPayments(), embedder=LocalHashEmbedder()
    )
    client = RecordingClient()
    functions = {fn.local_id: fn for fn in create_functions(client, deps)}
    try:
        yield Harness(loop, db, deps, client, functions)
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
        asyncio.set_event_loop(None)


# -- reads ------------------------------------------------------------------------------------


def read(harness: Harness, query: Any) -> list[Any]:
    """The rows (or values) `query` selects, read on the harness's loop."""

    async def run() -> list[Any]:
        async with harness.db.session() as session:
            return list((await session.scalars(query)).all())

    return harness.run(run())


def audit_rows(harness: Harness, customer_id: str) -> list[AuditLog]:
    """The customer's audit rows, oldest first."""
    return read(
        harness,
        select(AuditLog)
        .where(AuditLog.customer_id == customer_id)
        .order_by(AuditLog.created_at, AuditLog.id),
    )


def audit_actions(harness: Harness, customer_id: str) -> list[str]:
    """The actions of the customer's audit rows, oldest first."""
    return [row.action for row in audit_rows(harness, customer_id)]


def actions_for(harness: Harness, customer_id: str) -> list[tuple[str, str]]:
    """`(action, actor)` of the customer's audit rows, oldest first."""
    return [(row.action, row.actor) for row in audit_rows(harness, customer_id)]


def outbound_bodies(harness: Harness, ticket_id: str) -> list[str]:
    """The texts sent to the customer on the ticket."""
    return read(
        harness,
        select(Message.body_text).where(
            Message.ticket_id == ticket_id, Message.direction == "outbound"
        ),
    )
