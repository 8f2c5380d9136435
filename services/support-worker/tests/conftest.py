"""Fixtures for the support-worker tests: the local OpenAI / Stripe stand-ins
(`support_fakes.py`), the mocked-functions harness (`support_harness.py`) and the engine and
risk-worker stand-in the devserver suites run against (`support_live.py`)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from devserver.testing import EngineHandle, make_client, running_app, session_engine
from service_kit.db import Database
from shared_events import SCORE_REFUND_RISK

sys.path.insert(0, os.path.dirname(__file__))  # importlib mode: make the siblings importable
from support_fakes import (
    FakeOpenAI,
    FakeStripe,
    build_stripe_app,
    serve_asgi,
    serve_fake_openai,
)
from support_harness import Harness, create_conversation, open_harness
from support_live import stand_in_risk_functions


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    state = FakeStripe()
    with serve_asgi(build_stripe_app(state)) as origin:
        state.origin = origin
        yield state


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as fake:
        yield fake


@pytest.fixture(scope="session")
def inngest_engine() -> Iterator[EngineHandle]:
    """devserver.testing's engine, allowed a slow start (a loaded 2-core CI box needs > 30 s);
    defined here because `pytest_plugins` is refused in a non-root conftest."""
    with session_engine(health_timeout=120.0) as engine:
        yield engine


@pytest.fixture
async def risk_worker(inngest_engine: EngineHandle) -> AsyncIterator[None]:
    """A stand-in risk-worker app serving `score-refund-risk` (high risk from 100.00 up)."""
    client = make_client(inngest_engine, SCORE_REFUND_RISK.app_id)
    async with running_app(inngest_engine, client, stand_in_risk_functions(client)):
        yield


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The system of record of the test's backend (SQLite, or Postgres with TEST_DATABASE_URL)."""
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def harness(database_url: str) -> Iterator[Harness]:
    """Functions under mocked on the shared migrated+seeded database (isolate by unique ids)."""
    with open_harness(database_url) as opened:
        yield opened


@pytest.fixture
def fresh_harness(fresh_database_url: str) -> Iterator[Harness]:
    """Functions under mocked on a pristine seeded database (for flows reading every customer)."""
    with open_harness(fresh_database_url) as opened:
        yield opened


@pytest.fixture
def make_conversation() -> Any:
    """`await make_conversation(db, subject, body, tier, order_amounts)` (async tests)."""
    return create_conversation
