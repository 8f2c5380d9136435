"""What the gateway tests share: the test secrets, THE settings factory, and small builders.

A sibling of conftest.py rather than conftest.py itself: under `--import-mode=importlib` a test
module cannot import a conftest, and some values are needed at import time (parametrize
arguments such as `basic_auth(password="wrong")`). conftest.py puts this folder on `sys.path`
and builds its fixtures from here.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
from ingest_gateway.settings import GatewaySettings
from service_kit.db import Database
from sqlalchemy import func, select

# Where nothing listens: for gateways whose publishing is not the subject of the test.
NOTHING_LISTENS = "http://127.0.0.1:9"
POSTMARK = "/webhooks/postmark/inbound"

# `await make_gateway(**overrides)` (conftest.py): a started gateway's client.
GatewayFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@dataclass(frozen=True)
class GatewaySecrets:
    """Every credential a test gateway is configured with (and a test signs requests with)."""

    postmark_user: str = "postmark-inbound"
    postmark_password: str = "pm-test-password-0123456789"
    stripe: str = "whsec_test_gateway_0123456789abcdef"
    decision: str = "decision-test-secret-0123456789"
    admin: str = "admin-test-token-0123456789"
    generic: str = "generic-test-secret-0123456789"

    @classmethod
    def unique(cls) -> GatewaySecrets:
        """Fresh values of this run only: a search of the logs for them finds nothing else."""
        return cls(
            postmark_user="pm-user-" + uuid.uuid4().hex[:8],
            postmark_password="pm-pass-" + uuid.uuid4().hex,
            stripe="whsec_" + uuid.uuid4().hex,
            decision="decision-" + uuid.uuid4().hex,
            admin="admin-" + uuid.uuid4().hex,
            generic="generic-" + uuid.uuid4().hex,
        )


SECRETS = GatewaySecrets()


def gateway_settings(
    database_url: str,
    *,
    event_api_url: str = NOTHING_LISTENS,
    secrets: GatewaySecrets = SECRETS,
    **overrides: Any,
) -> GatewaySettings:
    """Test settings: every sender configured with `secrets`, plus the `helpdesk` generic source
    (a `ticket/resolved` producer); `overrides` are further GatewaySettings fields."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "inngest_dev": "1",
        "inngest_base_url": event_api_url,
        "postmark_inbound_username": secrets.postmark_user,
        "postmark_inbound_password": secrets.postmark_password,
        "stripe_webhook_secret": secrets.stripe,
        "decision_token_secret": secrets.decision,
        "admin_api_token": secrets.admin,
        "generic_sources": {
            "helpdesk": {
                "secret": secrets.generic,
                "event": "ticket/resolved",
                "id_path": "ticket.id",
                "fields": {"ticket_id": "ticket.id", "customer_id": "ticket.customer"},
                "constants": {"resolved_by": "helpdesk"},
            }
        },
        **overrides,
    }
    return GatewaySettings(_env_file=None, **values)


def basic_auth(
    user: str = SECRETS.postmark_user, password: str = SECRETS.postmark_password
) -> dict[str, str]:
    """The Authorization header Postmark sends (HTTP basic)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_payload(message_id: str, sender: str = "ada@example.com") -> dict[str, Any]:
    """A Postmark inbound webhook body (the fields Postmark sends) from a seeded customer."""
    return {
        "FromName": "Ada Lovelace",
        "MessageStream": "inbound",
        "From": sender,
        "FromFull": {"Email": sender, "Name": "Ada Lovelace", "MailboxHash": ""},
        "To": "support@inbound.postmarkapp.com",
        "ToFull": [{"Email": "support@inbound.postmarkapp.com", "Name": "", "MailboxHash": ""}],
        "Subject": "Charged twice",
        "MessageID": message_id,
        "Date": "Thu, 5 Nov 2026 09:12:01 +0000",
        "TextBody": "Please refund the second charge.",
        "HtmlBody": "<p>Please refund the second charge.</p>",
        "StrippedTextReply": "",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@mail.example.com>"}],
        "Attachments": [],
    }


def stripe_signed(
    event: dict[str, Any], *, secret: str = SECRETS.stripe, timestamp: int | None = None
) -> dict[str, Any]:
    """`content` and `headers` of a Stripe delivery of `event`, signed by the stripe library."""
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return {
        "content": body,
        "headers": {"Stripe-Signature": header, "Content-Type": "application/json"},
    }


async def count_rows(database: Database | str, model: Any, *where: Any) -> int:
    """Rows of `model` matching `where`, on a Database or a database URL (opened and closed)."""
    db = Database(database) if isinstance(database, str) else database
    try:
        async with db.session() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int((await session.execute(query)).scalar_one())
    finally:
        if isinstance(database, str):
            await db.dispose()
