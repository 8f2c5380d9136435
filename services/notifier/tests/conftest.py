"""Fixtures for the notifier tests: fakes at the edge (the database comes from
service_kit.testing, parametrized over SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

# The engine fixture, re-exported: `pytest_plugins` is refused in a non-root conftest when the
# whole repository is collected.
from devserver.testing import inngest_engine  # noqa: F401
from nerve_testing.fakes import FakeSlackWebhook


@pytest.fixture
def slack() -> Iterator[FakeSlackWebhook]:
    with FakeSlackWebhook() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
