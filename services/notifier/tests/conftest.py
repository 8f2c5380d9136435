"""Fixtures for the notifier tests: fakes at the edge, the real database (SQLite and Postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import inngest
import pytest
from inngest.experimental import mocked
from notifier.channels import LocalSinkChannel, SlackWebhookChannel
from notifier.fakes import FakeSlackWebhook
from notifier.functions import NotifierDeps, create_functions
from notifier.messages import DecisionLinks
from notifier.routing import Routes
from service_kit.db import Database
from service_kit.decision_tokens import decision_url, issue_decision_token
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

DECISION_SECRET = "test-decision-secret-0123456789"
GATEWAY_URL = "http://gateway.test"


def loop_free_database(url: str) -> Database:
    """A Database without a connection pool: `mocked.trigger` runs each step in a new event
    loop, and pooled asyncpg connections cannot cross loops."""
    db = Database(url, poolclass=NullPool) if url.startswith("sqlite") else Database(url)
    if db.backend == "postgresql":
        db.engine = create_async_engine(db.url, poolclass=NullPool)
        db.sessionmaker = async_sessionmaker(db.engine, expire_on_commit=False)
    return db


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


@pytest.fixture
def slack() -> Iterator[FakeSlackWebhook]:
    with FakeSlackWebhook() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def loop_free_db(database_url: str) -> AsyncIterator[Database]:
    db = loop_free_database(database_url)
    yield db
    await db.dispose()


class Harness:
    """The notifier's functions on a mocked client, wired to a fake Slack and the test DB."""

    def __init__(self, db: Database, slack: FakeSlackWebhook, *, slack_for: frozenset[str]) -> None:
        self.client = mocked.Inngest(app_id="notifier", is_production=False)
        self.routes = Routes(slack_destinations=slack_for)
        # The channels run inside mocked's per-step event loops: a fresh httpx client per send.
        self.deps = NotifierDeps(
            db=db,
            routes=self.routes,
            channels={"slack": _PerCallSlack(slack), "local": LocalSinkChannel()},
            decision_links=decision_links(),
        )
        self.functions = {fn.local_id: fn for fn in create_functions(self.client, self.deps)}

    async def trigger(
        self, fn_id: str, event: inngest.Event, step_stubs: dict[str, object] | None = None
    ) -> Any:
        return await asyncio.to_thread(
            mocked.trigger, self.functions[fn_id], event, self.client, step_stubs=step_stubs
        )


class _PerCallSlack:
    name = "slack"

    def __init__(self, fake: FakeSlackWebhook) -> None:
        self._urls = {d: fake.url(d) for d in ("reviewers", "approvals", "support", "risk", "ops")}

    async def send(self, message: Any) -> Any:
        async with httpx.AsyncClient() as http:
            return await SlackWebhookChannel(http, self._urls).send(message)


@pytest.fixture
def harness(loop_free_db: Database, slack: FakeSlackWebhook) -> Harness:
    return Harness(loop_free_db, slack, slack_for=frozenset({"support", "ops", "approvals"}))
