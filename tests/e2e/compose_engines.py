"""The production engines of the e2e harness, configured by docker-compose.yml itself.

`binary`: the compose stack without Docker. The `inngest` service's command (its flags parsed
from the compose file, `${VAR}` substituted) runs from an `inngest` executable on the local
Postgres (fresh, uniquely named databases) and Redis (db numbers nobody uses, flushed), and the
four services get the compose file's environment (x-service-env and their own), in production
mode, every compose host name rewritten to 127.0.0.1 and a free port.

`docker`: the same plan, with the compose file's inngest image and testcontainers' Postgres and
Redis.

The variables are what a user puts in `.env`: fresh random secrets in the formats the compose
file documents (production mode refuses any value published in the repository).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from engine_client import free_port
from nerve_cli.compose_stack import ComposeFile, Endpoint, production_stack

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379"
# The compose network's addresses of the backing services (the images' default ports).
POSTGRES_ADDRESS, REDIS_ADDRESS = "postgres:5432", "redis:6379"


@dataclass
class EngineSetup:
    """How the stack reaches (or starts) the engine, and the services' settings for it."""

    database_url: str
    engine_port: int
    external_engine_url: str | None = None
    engine_argv: list[str] | None = None
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    signing_key: str | None = None
    event_key: str = "dev"
    unset_env: tuple[str, ...] = ()


def compose_variables(compose: ComposeFile, chosen: dict[str, str]) -> dict[str, str]:
    """A value for every secret-looking variable the compose file uses: `chosen` ones (the
    credentials the tests sign with), else fresh random ones in the documented formats."""
    values = dict(chosen)
    for name in sorted(compose.variables() - set(values)):
        if name.endswith("_HEX") or name.endswith("EVENT_KEY"):
            values[name] = secrets.token_hex(32)
        elif name.endswith("SIGNING_KEY"):
            values[name] = f"signkey-prod-{secrets.token_hex(32)}"
        elif re.search(r"PASSWORD|SECRET|TOKEN|KEY|USERNAME", name):
            values[name] = secrets.token_hex(24)
    return values


def _admin_execute(admin_url: str, *statements: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def run() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def create_postgres_database(
    admin_url: str, prefix: str = "nerve_e2e"
) -> tuple[str, Callable[[], None]]:
    """A fresh uniquely named database on the admin URL's server: (its URL, drop)."""
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin_url, f'CREATE DATABASE "{name}"')

    def drop() -> None:
        _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def _claim_redis_dbs(redis_url: str, count: int) -> list[int]:
    """`count` Redis db numbers that hold no keys (other test runs may use the rest), flushed."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        candidates = list(range(2, 16))
        random.shuffle(candidates)
        claimed = []
        for number in candidates:
            db = redis.Redis.from_url(redis_url, db=number)
            try:
                if db.dbsize() == 0:
                    db.flushdb()
                    claimed.append(number)
            finally:
                db.close()
            if len(claimed) == count:
                return claimed
    finally:
        client.close()
    raise RuntimeError(f"fewer than {count} empty Redis databases at {redis_url}")


def _flush_redis_dbs(redis_url: str, numbers: list[int]) -> None:
    import redis

    for number in numbers:
        db = redis.Redis.from_url(redis_url, db=number)
        try:
            db.flushdb()
        finally:
            db.close()


def _plan(
    resources: ExitStack,
    *,
    chosen: dict[str, str],
    gateway_url: str,
    service_ports: dict[str, int],
    admin_url: str,
    redis_url: str,
    inngest_bin: str,
) -> EngineSetup:
    """Databases, Redis dbs and the compose file's engine + service settings pointing at them."""
    from sqlalchemy.engine import make_url

    compose = ComposeFile.load(COMPOSE_FILE)
    admin = make_url(admin_url)
    variables = compose_variables(compose, chosen)
    # What a user sets in .env for a gateway reachable at its published address.
    variables["GATEWAY_PUBLIC_URL"] = gateway_url
    if admin.password:
        variables["POSTGRES_PASSWORD"] = admin.password
    databases = {}
    for path in sorted(compose.url_paths(POSTGRES_ADDRESS, variables)):
        url, drop = create_postgres_database(admin_url, prefix=f"e2e_{path.strip('/') or 'db'}")
        resources.callback(drop)
        databases[path] = f"/{make_url(url).database}"
    redis_paths = sorted(compose.url_paths(REDIS_ADDRESS, variables))
    numbers = _claim_redis_dbs(redis_url, len(redis_paths))
    resources.callback(_flush_redis_dbs, redis_url, numbers)
    redis = make_url(redis_url)
    userinfo = (admin.username or "") + (f":{admin.password}" if admin.password else "")
    plan = production_stack(
        compose,
        variables,
        inngest_bin=inngest_bin,
        engine_port=free_port(),
        service_ports=service_ports,
        endpoints={
            POSTGRES_ADDRESS: Endpoint(
                f"{admin.host}:{admin.port or 5432}", userinfo=userinfo, paths=databases
            ),
            REDIS_ADDRESS: Endpoint(
                f"{redis.host}:{redis.port or 6379}",
                paths={path: f"/{n}" for path, n in zip(redis_paths, numbers, strict=True)},
            ),
        },
    )
    return EngineSetup(
        database_url=plan.shared("DATABASE_URL"),
        engine_port=plan.engine_port,
        engine_argv=[*plan.engine_argv, *_test_flags(inngest_bin, plan.engine_argv)],
        service_env=plan.service_env,
        signing_key=plan.shared("INNGEST_SIGNING_KEY"),
        event_key=plan.shared("INNGEST_EVENT_KEY"),
        # Production mode comes from ENVIRONMENT=production, as in the images.
        unset_env=("INNGEST_DEV",),
    )


# Listeners `inngest start` opens besides --port (connect gateway, gRPC, debug API): free ports,
# so the test's server never collides with another Inngest on the machine.
_SIDE_PORT_FLAGS = (
    "connect-gateway-port",
    "connect-gateway-grpc-port",
    "connect-executor-grpc-port",
    "debug-api-port",
)


def _test_flags(inngest_bin: str, argv: list[str]) -> list[str]:
    """What the test adds to the compose flags: free side ports, and a 1 s linear retry interval
    (the devserver's --retry-interval 1) so a failing step's retries take seconds, not the
    production backoff's minutes. Only flags this binary knows (`start --help`)."""
    try:
        usage = subprocess.run(
            [inngest_bin, argv[1], "--help"], capture_output=True, text=True, timeout=60
        )
        known = usage.stdout + usage.stderr
    except (OSError, subprocess.TimeoutExpired):
        known = ""
    flags = [f"--{name}={free_port()}" for name in _SIDE_PORT_FLAGS if f"--{name}" in known]
    if "--retry-interval" in known:
        flags.append("--retry-interval=1")
    return flags


def _reachable(check: Callable[[], Any]) -> str | None:
    try:
        check()
    except Exception as error:  # any failure to connect is the reason to skip
        return f"{type(error).__name__}: {error}"
    return None


@contextmanager
def binary_engine(
    chosen: dict[str, str], gateway_url: str, service_ports: dict[str, int]
) -> Iterator[EngineSetup]:
    inngest_bin = os.environ.get("INNGEST_BIN") or shutil.which("inngest")
    if not inngest_bin or not os.access(inngest_bin, os.X_OK):
        pytest.skip(
            "NERVE_E2E_ENGINE=binary needs an `inngest` executable: set INNGEST_BIN or put "
            "`inngest` on PATH (the npm inngest-cli package or a release binary)"
            + (f"; INNGEST_BIN={inngest_bin} is not executable" if inngest_bin else "")
        )
    admin_url = os.environ.get("TEST_DATABASE_URL") or LOCAL_POSTGRES
    redis_url = os.environ.get("NERVE_E2E_REDIS_URL") or LOCAL_REDIS
    if problem := _reachable(lambda: _admin_execute(admin_url, "SELECT 1")):
        pytest.skip(f"NERVE_E2E_ENGINE=binary needs Postgres (TEST_DATABASE_URL): {problem}")

    def ping_redis() -> None:
        import redis

        redis.Redis.from_url(redis_url, socket_timeout=3).ping()

    if problem := _reachable(ping_redis):
        pytest.skip(f"NERVE_E2E_ENGINE=binary needs Redis (NERVE_E2E_REDIS_URL): {problem}")
    with ExitStack() as resources:
        yield _plan(
            resources,
            chosen=chosen,
            gateway_url=gateway_url,
            service_ports=service_ports,
            admin_url=admin_url,
            redis_url=redis_url,
            inngest_bin=inngest_bin,
        )


@contextmanager
def docker_engine(
    chosen: dict[str, str], gateway_url: str, service_ports: dict[str, int]
) -> Iterator[EngineSetup]:
    """The compose file's inngest image (host network) on testcontainers' Postgres and Redis."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as error:  # no daemon, no socket, no permission
        pytest.skip(f"NERVE_E2E_ENGINE=docker needs a Docker daemon: {error}")
    from testcontainers.core.container import DockerContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    compose = ComposeFile.load(COMPOSE_FILE)
    images = {name: compose.image(name, {}) for name in ("postgres", "redis", "inngest")}
    with (
        ExitStack() as resources,
        PostgresContainer(images["postgres"], driver="asyncpg") as pg,
        RedisContainer(images["redis"]) as rd,
    ):
        redis_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}"
        setup = _plan(
            resources,
            chosen=chosen,
            gateway_url=gateway_url,
            service_ports=service_ports,
            admin_url=pg.get_connection_url(),
            redis_url=redis_url,
            inngest_bin="inngest",
        )
        assert setup.engine_argv is not None
        container = (
            DockerContainer(images["inngest"])
            .with_kwargs(network_mode="host")
            .with_command(setup.engine_argv)
        )
        with container:
            setup.external_engine_url = f"http://127.0.0.1:{setup.engine_port}"
            setup.engine_argv = None
            yield setup
