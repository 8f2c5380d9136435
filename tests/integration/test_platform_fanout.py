"""The four services in-process (each service's own `create_app`, served over real HTTP and
synced with the engine), the engine from `devserver.testing` (or INNGEST_BASE_URL), and the
outer-edge fakes from `nerve_testing.fakes`:

- one `stripe/charge.refund.failed` (a signed Stripe webhook into the gateway) runs
  support-worker, risk-worker and notifier once each, and the Slack fake receives exactly one
  message;
- a decision link from the notifier's approval message, followed, completes the waiting refund
  gate of the support worker.

(The process-level versions of these scenarios live in tests/e2e.)
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import stripe
from devserver.testing import (  # noqa: F401  (inngest_engine: the engine fixture)
    EngineHandle,
    inngest_engine,
    runs_for_event,
    serve_app,
    sync_app,
)
from ingest_gateway.app import create_app as create_gateway
from ingest_gateway.settings import GatewaySettings
from nerve_testing.fakes import FakeSlackWebhook, SmtpSink
from notifier.app import create_app as create_notifier
from notifier.settings import NotifierSettings
from risk_worker.app import create_app as create_risk_worker
from risk_worker.settings import RiskSettings
from service_kit.db import Database
from sqlalchemy import text
from support_worker.app import create_app as create_support_worker
from support_worker.settings import SupportSettings

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

T = TypeVar("T")
STRIPE_SECRET = "whsec_integration_local_only_81c2"
DECISION_SECRET = "integration-decision-token-key-5d3e"
POSTMARK_AUTH = ("postmark-it", "postmark-it-password-a71f")


async def eventually(probe: Callable[[], Any], *, timeout: float = 45.0, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Platform:
    engine: EngineHandle
    gateway_url: str
    db: Database
    slack: FakeSlackWebhook

    async def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            result = await session.execute(text(query), params)
            return [dict(row._mapping) for row in result]

    async def stripe_webhook(self, event_type: str, obj: dict[str, Any]) -> str:
        event_id = f"evt_it_{uuid.uuid4().hex[:20]}"
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
        signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", STRIPE_SECRET)
        async with httpx.AsyncClient(timeout=15) as http:
            response = await http.post(
                f"{self.gateway_url}/webhooks/stripe",
                content=body,
                headers={
                    "content-type": "application/json",
                    "stripe-signature": f"t={timestamp},v1={signature}",
                },
            )
        assert response.status_code == 200, response.text
        return event_id

    async def postmark(self, address: str, body: str) -> str:
        message_id = f"it-{uuid.uuid4()}"
        payload = {
            "From": address,
            "FromName": address.split("@")[0],
            "FromFull": {"Email": address, "Name": address.split("@")[0]},
            "To": "support@nerve.dev",
            "ToFull": [{"Email": "support@nerve.dev", "Name": "Support"}],
            "Subject": "About my order",
            "MessageID": message_id,
            "Date": format_datetime(datetime.now(UTC)),
            "TextBody": body,
            "HtmlBody": f"<p>{body}</p>",
            "Headers": [],
            "Attachments": [],
        }
        async with httpx.AsyncClient(timeout=15) as http:
            response = await http.post(
                f"{self.gateway_url}/webhooks/postmark/inbound", json=payload, auth=POSTMARK_AUTH
            )
        assert response.status_code == 200, response.text
        return message_id

    def slack_links(self, needle: str) -> dict[str, str]:
        """label -> url of the `<url|Label>` links in Slack posts mentioning `needle`."""
        links: dict[str, str] = {}
        for post in self.slack.posts:
            if needle in post.text:
                for url, label in re.findall(r"<(https?://[^|>]+)\|([^>]+)>", post.text):
                    links[label.strip().lower()] = url
        return links


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(
    inngest_engine: EngineHandle,  # noqa: F811
    primary_database_url: str,
) -> AsyncIterator[Platform]:
    engine = inngest_engine
    common: dict[str, Any] = {
        "environment": "test",
        "database_url": primary_database_url,
        "inngest_dev": "1",
        "inngest_base_url": engine.base_url,
        "inngest_event_key": engine.event_key,
        "log_json": True,
        "log_level": "WARNING",
    }
    with ExitStack() as stack:
        slack = stack.enter_context(FakeSlackWebhook())
        smtp = stack.enter_context(SmtpSink())
        gateway_url = stack.enter_context(
            serve_app(
                create_gateway(
                    GatewaySettings(
                        **common,
                        postmark_inbound_username=POSTMARK_AUTH[0],
                        postmark_inbound_password=POSTMARK_AUTH[1],
                        stripe_webhook_secret=STRIPE_SECRET,
                        decision_token_secret=DECISION_SECRET,
                        outbox_retry_max_seconds=2,
                    )
                )
            )
        )
        apps = [
            create_support_worker(
                SupportSettings(
                    **common,
                    openai_api_key=None,
                    refund_auto_approve_max_cents=0,  # every refund goes to a human
                    refund_approval_timeout_seconds=120,
                )
            ),
            create_risk_worker(RiskSettings(**common, risk_profile_debounce_seconds=1)),
            create_notifier(
                NotifierSettings(
                    **common,
                    slack_webhook_url=slack.url("all"),
                    smtp_host=smtp.host,
                    smtp_port=smtp.port,
                    decision_token_secret=DECISION_SECRET,
                    gateway_public_url=gateway_url,
                )
            ),
        ]
        for url in [gateway_url, *(stack.enter_context(serve_app(app)) for app in apps)]:
            await sync_app(engine, url + "/api/inngest")
        db = Database(primary_database_url)
        try:
            yield Platform(engine, gateway_url, db, slack)
        finally:
            await db.dispose()


async def test_one_refund_failure_runs_three_services_once_and_posts_once(
    platform: Platform,
) -> None:
    refund_id = f"re_it_{uuid.uuid4().hex[:10]}"
    event_id = await platform.stripe_webhook(
        "charge.refund.updated",
        {
            "id": refund_id,
            "object": "refund",
            "charge": "ch_seed_1009",
            "amount": 1999,
            "currency": "usd",
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
        },
    )

    async def finished_runs() -> list[dict[str, Any]] | None:
        stored = await platform.sql("SELECT 1 FROM outbox WHERE event_id = :e", e=event_id)
        if not stored:
            return None
        engine_ids = await engine_event_ids(platform.engine, event_id)
        runs = [
            run
            for engine_id in engine_ids
            for run in await runs_for_event(platform.engine, engine_id)
        ]
        done = [run for run in runs if run.get("status") in ("Completed", "Failed", "Cancelled")]
        return runs if len(runs) >= 3 and len(done) == len(runs) else None

    runs = await eventually(finished_runs, what="three finished runs of the refund failure")
    assert len(runs) == 3, runs
    assert all(run["status"] == "Completed" for run in runs), runs
    outputs = [json.dumps(run.get("output")) for run in runs]
    # one run per service, told apart by what each returns (REST names functions by UUID)
    assert sum('"deliveries"' in out for out in outputs) == 1, outputs  # notifier
    assert sum('"level_changed"' in out for out in outputs) == 1, outputs  # risk-worker
    posts = await eventually(
        lambda: _async([p for p in platform.slack.posts if refund_id in p.text]),
        what="the support Slack post",
    )
    await asyncio.sleep(1.0)  # anything else about this refund would have arrived by now
    assert [p for p in platform.slack.posts if refund_id in p.text] == posts
    assert len(posts) == 1


async def test_a_followed_decision_link_completes_the_refund_gate(platform: Platform) -> None:
    message_id = await platform.postmark("ada@example.com", "Please refund ord_1003, it broke.")

    async def refund_request() -> dict[str, Any] | None:
        rows = await platform.sql(
            "SELECT r.* FROM refund_requests r JOIN messages m ON m.id = r.message_id "
            "WHERE m.provider_message_id = :p",
            p=message_id,
        )
        return rows[0] if rows else None

    request = await eventually(refund_request, what="the refund request")
    links = await eventually(
        lambda: _async(platform.slack_links(request["id"])), what="the approval links"
    )
    assert set(links) >= {"approve", "reject"}
    async with httpx.AsyncClient(timeout=15) as http:
        page = await http.get(links["approve"])  # what a reviewer's click opens
        assert page.status_code == 200 and "Approve" in page.text
        decided = await http.post(links["approve"], json={"decision": "approve"})
    assert decided.status_code == 200, decided.text

    async def issued() -> dict[str, Any] | None:
        rows = await platform.sql("SELECT * FROM refund_requests WHERE id = :i", i=request["id"])
        return rows[0] if rows and rows[0]["provider_refund_id"] else None

    row = await eventually(issued, what="the refund to be issued")
    assert row["decided_by"] == "support-lead"
    audits = await platform.sql(
        "SELECT action FROM audit_log WHERE action = 'refund_issued' AND key LIKE :k",
        k=f"%{request['id']}%",
    )
    assert len(audits) == 1


async def _async(value: T) -> T:
    return value


async def engine_event_ids(engine: EngineHandle, event_id: str) -> list[str]:
    """The engine's internal ids of the event published with idempotency id `event_id`."""
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(
            f"{engine.base_url}/v1/events",
            params={"name": "stripe/charge.refund.failed", "limit": 1000},
            headers=engine.headers,
        )
    response.raise_for_status()
    events = response.json().get("data") or []
    return [
        str(event["internal_id"])
        for event in events
        if event.get("id") == event_id and event.get("internal_id")
    ]
