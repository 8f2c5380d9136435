"""What the notifier tests share: the mocked-client harness of the notifier's functions, and the
`Platform` handle of the engine tests (notifier + risk-worker on a real engine).

A sibling of conftest.py: under `--import-mode=importlib` a test module cannot import a
conftest; conftest.py puts this folder on `sys.path` and builds its fixtures from here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import inngest
from devserver.testing import EngineHandle
from inngest.experimental import mocked
from nerve_testing.fakes import FakeSlackWebhook, SmtpSink
from notifier.channels import (
    ChannelName,
    DeliveryResult,
    LocalSinkChannel,
    OutboundMessage,
    SlackWebhookChannel,
)
from notifier.functions import NotifierDeps, create_functions
from notifier.messages import DecisionLinks
from notifier.routing import Routes
from service_kit.db import Database
from service_kit.decision_tokens import decision_url, issue_decision_token
from service_kit.ids import new_id
from service_kit.models import Customer, InboundWebhook, Notification, utcnow
from sqlalchemy import select

DECISION_SECRET = "test-decision-secret-0123456789"
GATEWAY_URL = "http://gateway.test"


def decision_links() -> DecisionLinks:
    def issue(kind: str, request_id: str) -> str:
        token = issue_decision_token(
            DECISION_SECRET,
            kind=kind,  # type: ignore[arg-type]
            request_id=request_id,
            reviewer="support-lead",
            ttl=timedelta(hours=4),
        )
        return decision_url(GATEWAY_URL, token)

    return DecisionLinks(issue=issue)


class Harness:
    """The notifier's functions on a mocked client, wired to a fake Slack and the test DB."""

    def __init__(self, db: Database, slack: FakeSlackWebhook, *, slack_for: frozenset[str]) -> None:
        self.client = mocked.Inngest(app_id="notifier", is_production=False)
        self.routes = Routes(slack_destinations=slack_for)
        # The channels run inside mocked's per-step event loops: a fresh httpx client per send.
        self.deps = NotifierDeps(
            db=db,
            routes=self.routes,
            channels={"slack": PerCallSlack(slack), "local": LocalSinkChannel()},
            decision_links=decision_links(),
        )
        self.functions = {fn.local_id: fn for fn in create_functions(self.client, self.deps)}

    async def trigger(
        self, fn_id: str, event: inngest.Event, step_stubs: dict[str, object] | None = None
    ) -> Any:
        return await asyncio.to_thread(
            mocked.trigger, self.functions[fn_id], event, self.client, step_stubs=step_stubs
        )


class PerCallSlack:
    """The Slack channel with a fresh httpx client per send (mocked runs each step in its own
    event loop)."""

    name: ChannelName = "slack"

    def __init__(self, fake: FakeSlackWebhook) -> None:
        self._urls = {d: fake.url(d) for d in ("reviewers", "approvals", "support", "risk", "ops")}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        async with httpx.AsyncClient() as http:
            return await SlackWebhookChannel(http, self._urls).send(message)


SENT = {"notification_id": "stub", "outcome": "sent", "channel": "stub", "detail": "stub"}


async def rows_for(db: Database, dedup_prefix: str) -> list[Notification]:
    async with db.session() as session:
        found = await session.scalars(
            select(Notification)
            .where(Notification.dedup_key.like(f"{dedup_prefix}%"))
            .order_by(Notification.channel)
        )
        return list(found)


def invoked(data: dict[str, Any]) -> inngest.Event:
    return inngest.Event(name="inngest/function.invoked", data=data)


# -- the engine tests ------------------------------------------------------------------------------


class PerCallHttp:
    """Channels built per send, so no client is shared across the app thread's loop."""

    def __init__(self, make: Any) -> None:
        self._make = make

    async def send(self, message: Any) -> Any:
        async with httpx.AsyncClient() as http:
            return await self._make(http).send(message)


@dataclass
class Platform:
    engine: EngineHandle
    db: Database
    slack: FakeSlackWebhook
    smtp: SmtpSink

    async def notifications(self, dedup_prefix: str) -> list[Notification]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Notification).where(Notification.dedup_key.like(f"{dedup_prefix}%"))
            )
            return list(rows)

    async def new_customer(self, *, age_days: int) -> str:
        customer_id = new_id("cust")
        async with self.db.transaction() as session:
            session.add(
                Customer(
                    id=customer_id,
                    email=f"{customer_id}@example.com",
                    name="Integration Customer",
                    tier="standard",
                    created_at=utcnow() - timedelta(days=age_days),
                )
            )
        return customer_id

    async def stored_delivery(self, event_type: str, customer_id: str, evt: str) -> None:
        """What the gateway stores before publishing (the risk rules count these rows)."""
        async with self.db.transaction() as session:
            session.add(
                InboundWebhook(
                    id=new_id("wh"),
                    source="stripe",
                    external_id=evt,
                    event_type=event_type,
                    payload={"customer_id": customer_id, "charge_id": "ch_x"},
                )
            )
