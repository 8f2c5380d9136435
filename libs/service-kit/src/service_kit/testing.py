"""Pytest plugin with migrated, seeded databases: `pytest_plugins = ["service_kit.testing"]`.

Fixtures
- `database_url` (session scope, parametrized over the backends: "sqlite" always, "postgres" when
  TEST_DATABASE_URL is set): a migrated + seeded database shared by every test of the session on
  that backend. Tests isolate themselves with unique ids (`service_kit.ids.new_id`).
- `fresh_database_url` (function scope, same parametrization): a brand-new migrated + seeded
  database for tests that need pristine seed data. Cheap: copied from a per-session template
  (a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on Postgres).
- `primary_database_url` (session scope, not parametrized): Postgres when available, else SQLite,
  for expensive tests that need only one backend (it is the same database as `database_url`).
- `database` (function scope): a `service_kit.db.Database` on `database_url`, disposed after.
- `database_backend`: "sqlite" or "postgres", the backend of the current parametrization.

Postgres databases get unique names (`nerve_t_<pid>_<random>`) and are dropped at teardown, so
several engineers can run suites against one server at once. Migrations run once per session per
backend (into the template).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from sqlalchemy.engine import URL, make_url

from .db import Database, normalize_url

T = TypeVar("T")

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"
SQLITE = "sqlite"
POSTGRES = "postgres"


def postgres_admin_url() -> str | None:
    """TEST_DATABASE_URL, when set (a Postgres where we may CREATE/DROP DATABASE)."""
    value = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()
    return value or None


def available_backends() -> list[str]:
    """ "sqlite", plus "postgres" when TEST_DATABASE_URL is set."""
    return [SQLITE, POSTGRES] if postgres_admin_url() else [SQLITE]


def _backend_params() -> list[Any]:
    params: list[Any] = [pytest.param(SQLITE, id=SQLITE)]
    if postgres_admin_url():
        params.append(pytest.param(POSTGRES, id=POSTGRES, marks=pytest.mark.postgres))
    return params


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def loop_free_database(url: str | URL) -> Database:
    """A Database without a connection pool, for code that runs on several event loops
    (apps served in uvicorn threads, `inngest.experimental.mocked` steps): asyncpg connections
    are bound to the loop that opened them."""
    from sqlalchemy.pool import NullPool

    return Database(url, poolclass=NullPool)


def unique_database_name(prefix: str = "nerve_t") -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def _with_database(url: str | URL, name: str) -> str:
    return normalize_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin_execute(admin_url: str, *statements: str) -> None:
    import asyncpg

    parsed = normalize_url(admin_url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def create_postgres_database(admin_url: str, *, template: str | None = None) -> str:
    """Create a uniquely named database on the server of `admin_url`; return its URL."""
    name = unique_database_name()
    clause = f' TEMPLATE "{template}"' if template else ""
    run_sync(lambda: _admin_execute(admin_url, f'CREATE DATABASE "{name}"{clause}'))
    return _with_database(admin_url, name)


def drop_postgres_database(url: str) -> None:
    """Drop the database named by `url` (terminating its connections), using the same server."""
    name = make_url(url).database
    admin = postgres_admin_url() or url
    run_sync(lambda: _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _migrate(url: str) -> None:
    try:
        import nerve_migrations
    except ImportError as error:  # pragma: no cover - a broken install
        raise RuntimeError(
            "service_kit.testing needs the nerve-migrations workspace member "
            "(uv sync --all-packages)"
        ) from error
    nerve_migrations.upgrade(url)
    nerve_migrations.seed(url)


class DatabaseFactory:
    """Creates migrated + seeded databases: one template per backend, copies from it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._templates: dict[str, str] = {}
        self._shared: dict[str, str] = {}
        self._created_postgres: list[str] = []

    def template(self, backend: str) -> str:
        if backend not in self._templates:
            if backend == SQLITE:
                url = f"sqlite+aiosqlite:///{self.workdir / 'template.db'}"
                _migrate(url)
                _checkpoint_sqlite(self.workdir / "template.db")
            elif backend == POSTGRES:
                admin = postgres_admin_url()
                if admin is None:
                    raise RuntimeError(f"{TEST_DATABASE_URL_ENV} is not set")
                url = create_postgres_database(admin)
                self._created_postgres.append(url)
                _migrate(url)
            else:
                raise ValueError(f"unknown test database backend {backend!r}")
            self._templates[backend] = url
        return self._templates[backend]

    def new(self, backend: str) -> str:
        """A new database, copied from the backend's migrated + seeded template."""
        template = self.template(backend)
        if backend == SQLITE:
            target = self.workdir / f"db_{secrets.token_hex(6)}.db"
            shutil.copyfile(make_url(template).database or "", target)
            return f"sqlite+aiosqlite:///{target}"
        admin = postgres_admin_url() or template
        url = create_postgres_database(admin, template=make_url(template).database)
        self._created_postgres.append(url)
        return url

    def shared(self, backend: str) -> str:
        if backend not in self._shared:
            self._shared[backend] = self.new(backend)
        return self._shared[backend]

    def drop(self, url: str) -> None:
        if normalize_url(url).get_backend_name() == "postgresql":
            drop_postgres_database(url)
            if url in self._created_postgres:
                self._created_postgres.remove(url)
        else:
            path = Path(make_url(url).database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        for url in list(self._created_postgres):
            try:
                drop_postgres_database(url)
            except Exception as error:
                print(f"service_kit.testing: could not drop {url}: {error}")
        self._created_postgres.clear()


def _checkpoint_sqlite(path: Path) -> None:
    """Fold the WAL into the main file so a plain file copy carries everything."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """The session's database factory (templates are built lazily, once per backend)."""
    databases = DatabaseFactory(tmp_path_factory.mktemp("service_kit_db"))
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session", params=_backend_params())
def database_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this parametrization: "sqlite" or "postgres"."""
    backend: str = request.param
    return backend


@pytest.fixture(scope="session")
def database_url(database_factory: DatabaseFactory, database_backend: str) -> str:
    """A migrated, seeded database URL shared by the session's tests on this backend."""
    return database_factory.shared(database_backend)


@pytest.fixture
def fresh_database_url(database_factory: DatabaseFactory, database_backend: str) -> Iterator[str]:
    """A brand-new migrated, seeded database for this test only (dropped afterwards)."""
    url = database_factory.new(database_backend)
    try:
        yield url
    finally:
        database_factory.drop(url)


@pytest.fixture(scope="session")
def primary_database_url(database_factory: DatabaseFactory) -> str:
    """Postgres when TEST_DATABASE_URL is set, else SQLite; not parametrized."""
    return database_factory.shared(POSTGRES if postgres_admin_url() else SQLITE)


@pytest_asyncio.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A `Database` on `database_url`, disposed after the test."""
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()
