"""Fixtures for the notifier tests: fakes at the edge (the database comes from
service_kit.testing, parametrized over SQLite and Postgres), the functions' harness
(`notifier_harness.py`)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

# The engine fixture, re-exported: `pytest_plugins` is refused in a non-root conftest when the
# whole repository is collected.
from devserver.testing import inngest_engine  # noqa: F401
from nerve_testing.fakes import FakeSlackWebhook
from service_kit.db import Database
from service_kit.testing import loop_free_database

sys.path.insert(0, os.path.dirname(__file__))  # importlib mode: make the sibling importable
from notifier_harness import Harness


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


@pytest.fixture
def harness(loop_free_db: Database, slack: FakeSlackWebhook) -> Harness:
    return Harness(loop_free_db, slack, slack_for=frozenset({"support", "ops", "approvals"}))
