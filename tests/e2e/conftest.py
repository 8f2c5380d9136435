"""The whole platform as processes, driven only through public surfaces.

One `platform` per session: the engine, the four services (started with `nerve_cli.stack`, the
same supervisor as `make dev`), one shared database, and the outer-edge fakes (a Slack incoming
webhook and an SMTP server from `notifier.fakes`). Tests talk to it through webhooks, decision
links, the engine's REST API (`nerve_cli.engine.EngineClient`, what the `nerve` CLI uses), the
database and the fakes. Scenarios isolate themselves with unique message ids / customers.

Engine (NERVE_E2E_ENGINE):
    devserver (default)  `python -m devserver` on a free port, durable SQLite state file
    external             the server at INNGEST_BASE_URL (services run in dev mode against it)
    docker               inngest/inngest + Postgres + Redis via testcontainers; skipped with the
                         reason when no Docker daemon answers
Database: SQLite file, or a fresh uniquely named Postgres database when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest
from nerve_cli.engine import TERMINAL_STATUSES, EngineClient, RunSummary
from nerve_cli.stack import SERVICES, Stack, StackConfig, free_port
from notifier.fakes import FakeSlackWebhook, SmtpSink

T = TypeVar("T")

ENGINE_KIND = os.environ.get("NERVE_E2E_ENGINE", "devserver")
STRIPE_SECRET = "whsec_e2e_local_only_3f9a1c"
DECISION_SECRET = "e2e-decision-token-key-7b21"
POSTMARK_AUTH = ("postmark-e2e", "postmark-e2e-password-19c4")
# Short gates so timeouts are observable in seconds (the defaults are hours).
GATE_TIMEOUT_SECONDS = 10
# Keys of the `inngest start` container (even-length hex, test only).
DOCKER_SIGNING_KEY = "signkey-test-" + "5e" * 32
DOCKER_EVENT_KEY = "e2e0" * 8


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Platform:
    stack: Stack
    engine: EngineClient
    database_url: str
    slack: FakeSlackWebhook
    smtp: SmtpSink

    wait_until = staticmethod(wait_until)
    decision_secret: str = DECISION_SECRET
    signing_key: str | None = None

    @property
    def engine_flags(self) -> list[str]:
        """`nerve` CLI options that point at this engine."""
        flags = ["--engine-url", self.stack.engine_url, "--event-key", self.engine.event_key]
        if self.signing_key:
            flags += ["--signing-key", self.signing_key]
        return flags

    @property
    def gateway_url(self) -> str:
        return self.stack.service_url("ingest-gateway")

    @property
    def is_devserver(self) -> bool:
        return ENGINE_KIND == "devserver"

    # -- webhooks ----------------------------------------------------------------------------

    def postmark(
        self,
        from_address: str,
        body: str,
        *,
        subject: str = "Question about my account",
        message_id: str | None = None,
        auth: tuple[str, str] = POSTMARK_AUTH,
    ) -> tuple[httpx.Response, str]:
        """POST a Postmark inbound webhook; returns (response, event id the gateway publishes)."""
        message_id = message_id or f"e2e-{uuid.uuid4()}"
        payload = {
            "From": from_address,
            "FromName": from_address.split("@")[0],
            "FromFull": {"Email": from_address, "Name": from_address.split("@")[0]},
            "To": "support@nerve.dev",
            "ToFull": [{"Email": "support@nerve.dev", "Name": "Support"}],
            "Subject": subject,
            "MessageID": message_id,
            "Date": format_datetime(datetime.now(UTC)),
            "TextBody": body,
            "HtmlBody": f"<p>{body}</p>",
            "Headers": [{"Name": "X-Spam-Status", "Value": "No"}],
            "Attachments": [],
        }
        response = httpx.post(
            f"{self.gateway_url}/webhooks/postmark/inbound", json=payload, auth=auth, timeout=15
        )
        return response, f"postmark-{message_id}"

    def stripe(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        event_id: str | None = None,
        secret: str = STRIPE_SECRET,
    ) -> tuple[httpx.Response, str]:
        """POST a Stripe event signed with the stripe library's own scheme."""
        import stripe

        event_id = event_id or f"evt_e2e_{uuid.uuid4().hex[:20]}"
        body = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": event_type,
                "created": int(time.time()),
                "livemode": False,
                "data": {"object": obj},
            }
        )
        timestamp = int(time.time())
        signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
        response = httpx.post(
            f"{self.gateway_url}/webhooks/stripe",
            content=body,
            headers={
                "content-type": "application/json",
                "stripe-signature": f"t={timestamp},v1={signature}",
            },
            timeout=15,
        )
        return response, event_id

    def decide(self, link: str, decision: str, edited_text: str | None = None) -> httpx.Response:
        body: dict[str, str] = {"decision": decision}
        if edited_text:
            body["edited_text"] = edited_text
        return httpx.post(link, json=body, timeout=15)

    # -- engine ------------------------------------------------------------------------------

    def event_runs(self, event_id: str, name: str | None = None) -> list[RunSummary]:
        stored = self.engine.find_event(event_id, name=name)
        if stored is None:
            return []
        return self.engine.event_runs(str(stored["internal_id"]))

    def wait_event_runs(
        self,
        event_id: str,
        *,
        name: str | None = None,
        count: int = 1,
        timeout: float = 45.0,
        terminal: bool = True,
    ) -> list[RunSummary]:
        """Runs of an event once at least `count` exist (and, by default, all have ended)."""

        def ready() -> list[RunSummary] | None:
            runs = self.event_runs(event_id, name)
            if len(runs) < count:
                return None
            if terminal and any(run.status not in TERMINAL_STATUSES for run in runs):
                return None
            return runs

        return wait_until(ready, timeout=timeout, what=f"{count} run(s) of {event_id}")

    def runs_of(self, function: str, *, status: list[str] | None = None) -> list[RunSummary]:
        return self.engine.list_runs(function_id=function, status=status, limit=1000)

    # -- database ----------------------------------------------------------------------------

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        async def run() -> list[dict[str, Any]]:
            engine = create_async_engine(self.database_url)
            try:
                async with engine.connect() as conn:
                    result = await conn.execute(text(query), params)
                    return [dict(row._mapping) for row in result]
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def customer_for(self, address: str) -> str:
        rows = self.sql("SELECT id FROM customers WHERE email = :email", email=address.lower())
        assert rows, f"no customer {address}"
        return str(rows[0]["id"])

    def message_id_for(self, provider_message_id: str) -> str:
        rows = self.sql(
            "SELECT id FROM messages WHERE provider_message_id = :pid", pid=provider_message_id
        )
        assert len(rows) == 1, rows
        return str(rows[0]["id"])

    def drafts_for_message(self, message_id: str) -> list[dict[str, Any]]:
        return self.sql("SELECT * FROM drafts WHERE message_id = :mid", mid=message_id)

    def audit_actions(self, **where: Any) -> list[str]:
        clauses = " AND ".join(f"{column} = :{column}" for column in where)
        rows = self.sql(
            f"SELECT action FROM audit_log WHERE {clauses} ORDER BY created_at, id", **where
        )
        return [str(row["action"]) for row in rows]

    # -- fakes -------------------------------------------------------------------------------

    def slack_links(self, needle: str) -> dict[str, str]:
        """Decision links (label -> url) of the Slack posts mentioning `needle` (mrkdwn
        `<url|Label>` in the text, or Block Kit buttons)."""
        links: dict[str, str] = {}
        for post in self.slack.posts:
            if needle not in json.dumps(post.body):
                continue
            for url, label in re.findall(r"<(https?://[^|>]+)\|([^>]+)>", post.text):
                links[label.strip().lower()] = url
            for block in post.body.get("blocks", []):
                for element in block.get("elements", []) or []:
                    if isinstance(element, dict) and element.get("url"):
                        label = element.get("text", {})
                        label = label.get("text") if isinstance(label, dict) else str(label)
                        links[str(label).strip().lower()] = str(element["url"])
        return links


def _create_postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"nerve_e2e_{uuid.uuid4().hex[:10]}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def execute(statement: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        asyncio.run(
            execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
        )
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}"'))

    return url.set(database=name).render_as_string(hide_password=False), drop


def _docker_engine() -> Iterator[str]:
    """inngest/inngest running `inngest start` (host network, signed, keys enforced) on its own
    Postgres and Redis via testcontainers; services talk to it in cloud mode."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as error:  # no daemon, no socket, no permission
        pytest.skip(f"NERVE_E2E_ENGINE=docker needs a Docker daemon: {error}")
    from testcontainers.core.container import DockerContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with (
        PostgresContainer("postgres:16.4-alpine") as pg,
        RedisContainer("redis:7.4.1-alpine") as rd,
    ):
        port = free_port()
        pg_uri = pg.get_connection_url().replace("postgresql+psycopg2", "postgres")
        redis_uri = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}"
        inngest = (
            DockerContainer("inngest/inngest:v1.12.1")
            .with_kwargs(network_mode="host")
            .with_command(
                f"inngest start --port {port} --postgres-uri {pg_uri} --redis-uri {redis_uri} "
                f"--signing-key {DOCKER_SIGNING_KEY} --event-key {DOCKER_EVENT_KEY} "
                "--retry-interval 1 --postgres-max-open-conns 10"
            )
        )
        with inngest:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _healthy(url), timeout=60, what="the inngest container to answer")
            yield url


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    state = tmp_path_factory.mktemp("platform")
    admin_url = os.environ.get("TEST_DATABASE_URL")
    drop: Callable[[], None] | None = None
    if admin_url:
        database_url, drop = _create_postgres_database(admin_url)
    else:
        database_url = f"sqlite+aiosqlite:///{state / 'nerve.db'}"

    external: str | None = None
    docker_engine: Iterator[str] | None = None
    if ENGINE_KIND == "external":
        external = os.environ.get("INNGEST_BASE_URL")
        if not external:
            pytest.skip("NERVE_E2E_ENGINE=external needs INNGEST_BASE_URL")
    elif ENGINE_KIND == "docker":
        docker_engine = _docker_engine()
        external = next(docker_engine)
    elif ENGINE_KIND != "devserver":
        raise pytest.UsageError("NERVE_E2E_ENGINE must be devserver, external or docker")

    slack = FakeSlackWebhook().start()
    smtp = SmtpSink().start()
    env = {
        "ENVIRONMENT": "test",
        "LOG_JSON": "true",
        "POSTMARK_INBOUND_USERNAME": POSTMARK_AUTH[0],
        "POSTMARK_INBOUND_PASSWORD": POSTMARK_AUTH[1],
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "DECISION_TOKEN_SECRET": DECISION_SECRET,
        "ADMIN_API_TOKEN": "e2e-admin-token-5521",
        "REFUND_AUTO_APPROVE_MAX_CENTS": "0",  # every refund goes to a human
        "REFUND_APPROVAL_TIMEOUT_SECONDS": str(GATE_TIMEOUT_SECONDS),
        "ESCALATION_TIMEOUT_SECONDS": str(GATE_TIMEOUT_SECONDS),
        "RISK_PROFILE_DEBOUNCE_SECONDS": "1",
        # One incoming webhook per destination, like a real workspace: Slack's 1 msg/s throttle
        # is per webhook, so reviewer pings never queue in front of approval requests.
        "SLACK_WEBHOOK_URLS": json.dumps(
            {name: slack.url(name) for name in ("reviewers", "approvals", "support", "risk", "ops")}
        ),
        "SLACK_THROTTLE_PERIOD_MS": "1000",
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "OUTBOX_RETRY_MAX_SECONDS": "2",
    }
    config = StackConfig(
        database_url=database_url,
        state_dir=state,
        engine_port=free_port(),
        ports={spec.name: free_port() for spec in SERVICES},
        external_engine_url=external,
        engine_database_url=f"sqlite+aiosqlite:///{state / 'devserver.db'}",
        retry_interval=1,
        extra_env=env,
        # The offline model and the local payment ledger, whatever the developer's shell has.
        unset_env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "STRIPE_API_KEY"),
        cwd=state,  # no stray .env from the repository root
    )
    signing_key: str | None = None
    event_key = "dev"
    if ENGINE_KIND == "docker":
        # `inngest start` is a cloud-kind server: services sign in with the keys.
        signing_key, event_key = DOCKER_SIGNING_KEY, DOCKER_EVENT_KEY
        env.update(
            {"INNGEST_DEV": "0", "INNGEST_SIGNING_KEY": signing_key, "INNGEST_EVENT_KEY": event_key}
        )
    stack = Stack(config)
    try:
        stack.start()
        engine = EngineClient(stack.engine_url, event_key=event_key, signing_key=signing_key)
        yield Platform(stack, engine, database_url, slack, smtp, signing_key=signing_key)
        engine.close()
    finally:
        stack.stop()
        slack.stop()
        smtp.stop()
        if docker_engine is not None:
            docker_engine.close()
        if drop is not None:
            drop()
