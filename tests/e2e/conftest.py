"""The whole platform as processes, driven only through public surfaces.

One `platform` per session: the engine, the four services (started with `nerve_cli.stack`, the
same supervisor as `make dev`), one shared database, and the outer-edge fakes (a Slack incoming
webhook and an SMTP server from `nerve_testing.fakes`). Tests talk to it through webhooks,
decision links, the engine's REST API (`engine_client.EngineClient`, what the `nerve` CLI uses), the
database and the fakes. Scenarios isolate themselves with unique message ids / customers.

Engine (NERVE_E2E_ENGINE):
    devserver (default)  `python -m devserver` on a free port, durable SQLite state file
    external             the server at INNGEST_BASE_URL (services run in dev mode against it)
    binary               the compose stack without Docker: an `inngest` executable (INNGEST_BIN
                         or PATH) in `start` mode with docker-compose.yml's own flags, on the local
                         Postgres + Redis, the services in production mode with the compose file's
                         environment (see compose_engines.py); skipped with the reason when no
                         binary, Postgres or Redis is found
    docker               the same, with the compose file's inngest image, Postgres and Redis via
                         testcontainers; skipped with the reason when no Docker daemon answers
Database: SQLite file, or a fresh uniquely named Postgres database when TEST_DATABASE_URL is set
(binary and docker: always Postgres, like the compose file).
Secrets are fresh random values per session: production mode refuses any value in the repository.
A SIGTERM (a `timeout` wrapper) or SIGHUP ends the run like Ctrl-C: every process is stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from engine_client import TERMINAL_STATUSES, EngineClient, RunSummary, free_port
from nerve_cli.stack import (
    SERVICES,
    Stack,
    StackConfig,
    raise_keyboard_interrupt_on_termination,
)
from nerve_testing.fakes import FakeSlackWebhook, SmtpSink

sys.path.insert(0, os.path.dirname(__file__))  # importlib mode: make the sibling importable
from compose_engines import (
    EngineSetup,
    binary_engine,
    create_postgres_database,
    docker_engine,
)

T = TypeVar("T")

ENGINE_KIND = os.environ.get("NERVE_E2E_ENGINE", "devserver")
ENGINE_KINDS = ("devserver", "external", "binary", "docker")
# Short gates so timeouts are observable in seconds (the defaults are hours).
GATE_TIMEOUT_SECONDS = 10


def pytest_configure(config: pytest.Config) -> None:
    raise_keyboard_interrupt_on_termination()


def fresh_secrets() -> dict[str, str]:
    """The webhook credentials and secrets of this session (never a value from the repository)."""
    return {
        "POSTMARK_INBOUND_USERNAME": f"postmark-{secrets.token_hex(4)}",
        "POSTMARK_INBOUND_PASSWORD": secrets.token_urlsafe(24),
        "STRIPE_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(24)}",
        "DECISION_TOKEN_SECRET": secrets.token_urlsafe(32),
        "ADMIN_API_TOKEN": secrets.token_urlsafe(32),
    }


def wait_until(
    predicate: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """The predicate's first truthy answer (polled every 0.2 s), or an AssertionError."""
    deadline = time.monotonic() + timeout
    last: T | None = None
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
    secrets: dict[str, str]

    wait_until = staticmethod(wait_until)
    signing_key: str | None = None
    # What every service of the compose file gets (x-service-env), for a service added by a
    # test; empty on the development engines.
    shared_service_env: dict[str, str] = field(default_factory=dict)

    @property
    def decision_secret(self) -> str:
        return self.secrets["DECISION_TOKEN_SECRET"]

    @property
    def postmark_auth(self) -> tuple[str, str]:
        return self.secrets["POSTMARK_INBOUND_USERNAME"], self.secrets["POSTMARK_INBOUND_PASSWORD"]

    @property
    def engine_flags(self) -> list[str]:
        """`nerve` CLI options that point at this engine."""
        flags = ["--engine-url", self.stack.engine_url, "--event-key", self.engine.event_key]
        if self.signing_key:
            flags += ["--signing-key", self.signing_key]
        return flags

    def new_service_env(self, port: int) -> dict[str, str]:
        """The environment of one more service on `port`, configured like the platform's."""
        return {
            **self.stack.base_env(),
            **self.shared_service_env,
            "PORT": str(port),
            "INNGEST_SERVE_ORIGIN": f"http://127.0.0.1:{port}",
        }

    @property
    def gateway_url(self) -> str:
        return self.stack.service_url("ingest-gateway")

    @property
    def engine_kind(self) -> str:
        return ENGINE_KIND

    @property
    def owns_engine(self) -> bool:
        """The harness started the engine (and can stop and restart it)."""
        return self.stack.engine is not None

    # -- webhooks ----------------------------------------------------------------------------

    def postmark(
        self,
        from_address: str,
        body: str,
        *,
        subject: str = "Question about my account",
        message_id: str | None = None,
        auth: tuple[str, str] | None = None,
    ) -> tuple[httpx.Response, str]:
        """POST a Postmark inbound webhook; returns (response, event id the gateway publishes)."""
        message_id = message_id or f"e2e-{uuid.uuid4()}"
        auth = auth or self.postmark_auth
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
        secret: str | None = None,
    ) -> tuple[httpx.Response, str]:
        """POST a Stripe event signed with the stripe library's own scheme."""
        import stripe

        secret = secret or self.secrets["STRIPE_WEBHOOK_SECRET"]
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
        """Runs of the event(s) carrying the producer-given id (a re-sent id is stored again)."""
        return self.engine.runs_for_event_id(event_id, name=name)

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
        """Runs of a function, named by its slug `app-fn`."""
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


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if ENGINE_KIND not in ENGINE_KINDS:
        raise pytest.UsageError(f"NERVE_E2E_ENGINE must be one of {', '.join(ENGINE_KINDS)}")
    state = tmp_path_factory.mktemp("platform")
    chosen = fresh_secrets()
    ports = {spec.name: free_port() for spec in SERVICES}
    gateway_url = f"http://127.0.0.1:{ports['ingest-gateway']}"
    with ExitStack() as resources:
        if ENGINE_KIND in ("binary", "docker"):
            production = binary_engine if ENGINE_KIND == "binary" else docker_engine
            setup = resources.enter_context(production(chosen, gateway_url, ports))
        else:
            setup = _development_engine(state, resources)
        yield from _run_platform(state, setup, chosen, ports, resources)


def _development_engine(state: Path, resources: ExitStack) -> EngineSetup:
    """The devserver (started by the stack) or the engine at INNGEST_BASE_URL; services in dev
    mode; SQLite, or a fresh Postgres database when TEST_DATABASE_URL is set."""
    external = None
    if ENGINE_KIND == "external":
        external = os.environ.get("INNGEST_BASE_URL")
        if not external:
            pytest.skip("NERVE_E2E_ENGINE=external needs INNGEST_BASE_URL")
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if admin_url:
        database_url, drop = create_postgres_database(admin_url)
        resources.callback(drop)
    else:
        database_url = f"sqlite+aiosqlite:///{state / 'nerve.db'}"
    return EngineSetup(
        database_url=database_url, engine_port=free_port(), external_engine_url=external
    )


def _run_platform(
    state: Path,
    setup: EngineSetup,
    chosen: dict[str, str],
    ports: dict[str, int],
    resources: ExitStack,
) -> Iterator[Platform]:
    slack = resources.enter_context(_started(FakeSlackWebhook()))
    smtp = resources.enter_context(_started(SmtpSink()))
    env = {
        **chosen,
        "ENVIRONMENT": "test",
        "LOG_JSON": "true",
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
        database_url=setup.database_url,
        state_dir=state,
        engine_port=setup.engine_port,
        ports=ports,
        external_engine_url=setup.external_engine_url,
        engine_argv=setup.engine_argv,
        engine_database_url=f"sqlite+aiosqlite:///{state / 'devserver.db'}",
        retry_interval=1,
        extra_env=env,
        # The compose file's environment per service, on top of the test's settings.
        service_env=setup.service_env,
        # The offline model and the local payment ledger, whatever the developer's shell has.
        unset_env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "STRIPE_API_KEY", *setup.unset_env),
        cwd=state,  # no stray .env from the repository root
        # A killed service comes back on the same socket: the engine's requests wait for it.
        hold_service_sockets=True,
    )
    stack = Stack(config)
    resources.callback(stack.stop)
    stack.start()
    engine = EngineClient(
        stack.engine_url, event_key=setup.event_key, signing_key=setup.signing_key
    )
    resources.callback(engine.close)
    envs = list(setup.service_env.values())
    shared = {k: v for k, v in envs[0].items() if all(e.get(k) == v for e in envs)} if envs else {}
    yield Platform(
        stack,
        engine,
        setup.database_url,
        slack,
        smtp,
        chosen,
        signing_key=setup.signing_key,
        shared_service_env=shared,
    )


@contextmanager
def _started(fake: Any) -> Iterator[Any]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
