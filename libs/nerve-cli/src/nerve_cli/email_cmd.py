"""`nerve email`: the course's fire_test_email, through the gateway's Postmark webhook."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any

import httpx
import typer
from engine_client import RunStatus

from .events_cmd import console, err, report_runs, wait_for_runs
from .options import (
    DEFAULT_DATABASE_URL,
    DEFAULT_ENGINE_URL,
    DEFAULT_GATEWAY_URL,
    DatabaseUrl,
    EngineUrl,
    EventKey,
    SigningKey,
    engine_client,
)
from .render import print_json
from .review_hints import print_reviewer_hint, reviewer_waits


def email(
    customer_id: Annotated[
        str | None, typer.Option("--customer-id", help="Seeded customer, e.g. cust_001.")
    ] = None,
    from_address: Annotated[
        str | None, typer.Option("--from", help="Sender address (instead of --customer-id).")
    ] = None,
    body: Annotated[str, typer.Option("--body", help="The email text.")] = (
        "Hi, my order arrived damaged. Can you help?"
    ),
    subject: Annotated[str, typer.Option("--subject")] = "Help with my order",
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Same key -> same Postmark MessageID -> one run. Default: customer + time.",
        ),
    ] = None,
    gateway_url: Annotated[
        str, typer.Option("--gateway-url", envvar="NERVE_GATEWAY_URL")
    ] = DEFAULT_GATEWAY_URL,
    postmark_user: Annotated[
        str, typer.Option("--postmark-user", envvar="POSTMARK_INBOUND_USERNAME")
    ] = "postmark",
    postmark_password: Annotated[
        str, typer.Option("--postmark-password", envvar="POSTMARK_INBOUND_PASSWORD")
    ] = "dev-postmark-password",
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the runs it triggers.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Fire a test email (the course's fire_test_email) through the gateway's Postmark webhook.

    It goes through the real front door: the gateway authenticates it, stores the text (claim
    check) and publishes customer/email.received with id `postmark-{MessageID}`. With --wait it
    exits 0 when every run completed, 3 when a run waits for a reviewer (and says how to decide
    it), 1 otherwise.
    """
    if not from_address:
        if not customer_id:
            raise typer.BadParameter("give --customer-id or --from")
        from_address = lookup_customer_email(database_url, customer_id)
    sent_at = datetime.now(UTC)
    key = idempotency_key or f"{customer_id or from_address}-{int(time.time() * 1000)}"
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"nerve-test-email:{key}"))
    webhook = postmark_inbound_payload(
        message_id=message_id, from_address=from_address, subject=subject, body=body
    )
    url = f"{gateway_url.rstrip('/')}/webhooks/postmark/inbound"
    try:
        response = httpx.post(
            url, json=webhook, auth=(postmark_user, postmark_password), timeout=10.0
        )
    except httpx.HTTPError as error:
        err.print(f"[red]gateway at {gateway_url} unreachable: {error}[/red]")
        raise typer.Exit(1) from None
    if response.status_code >= 300:
        err.print(f"[red]gateway refused the email: {response.status_code} {response.text}[/red]")
        raise typer.Exit(1)
    event_id = f"postmark-{message_id}"
    answer = _json_or_empty(response)
    duplicate = answer.get("status") == "duplicate"
    if not as_json:
        if duplicate:
            original = lookup_message_id(database_url, message_id)
            console.print(
                f"duplicate: this email (MessageID={message_id}) was already received"
                + (f" as message {original}" if original else "")
                + f", event_id={event_id}; nothing new was stored or run",
                soft_wrap=True,
            )
        else:
            console.print(
                f"accepted MessageID={message_id} message={answer.get('id', '?')} "
                f"event_id={event_id}",
                soft_wrap=True,
            )
    if wait:
        # The gateway publishes the event itself: find it by the id it gave it. Events received
        # before this command (minus clock skew) cannot be it.
        received_after = sent_at - timedelta(minutes=5)
        with engine_client(engine_url, event_key, signing_key) as engine:
            runs = wait_for_runs(
                lambda: engine.runs_for_event_id(
                    event_id, name="customer/email.received", received_after=received_after
                ),
                event_id,
                timeout=timeout,
                parked=lambda found: reviewer_waits(engine, found, database_url),
            )
            waiting = reviewer_waits(engine, runs, database_url)
        described = {"id": event_id, "message_id": message_id}
        report_runs(runs, as_json=as_json, event=described, waiting=waiting)
        if waiting:
            if not as_json:
                print_reviewer_hint(waiting, database_url, customer_id, engine_url, gateway_url)
            raise typer.Exit(3)
        if not runs or any(run.status != RunStatus.COMPLETED for run in runs):
            raise typer.Exit(1)
    elif as_json:
        status = "duplicate" if duplicate else "accepted"
        print_json({"event": {"id": event_id, "message_id": message_id}, "status": status})


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def lookup_message_id(database_url: str, provider_message_id: str) -> str | None:
    """messages.id of a stored email, by its provider MessageID (None when it cannot be read)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def query() -> str | None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(
                    text("SELECT id FROM messages WHERE provider_message_id = :pm"),
                    {"pm": provider_message_id},
                )
                row = result.first()
                return None if row is None else str(row[0])
        finally:
            await engine.dispose()

    try:
        return asyncio.run(query())
    except Exception:
        return None


def postmark_inbound_payload(
    *, message_id: str, from_address: str, subject: str, body: str, to: str = "support@nerve.dev"
) -> dict[str, Any]:
    """A Postmark inbound webhook body with the documented field names."""
    now = datetime.now(UTC)
    return {
        "FromName": from_address.split("@")[0],
        "MessageStream": "inbound",
        "From": from_address,
        "FromFull": {"Email": from_address, "Name": from_address.split("@")[0], "MailboxHash": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": "Support", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": to,
        "Subject": subject,
        "MessageID": message_id,
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": format_datetime(now),
        "TextBody": body,
        "HtmlBody": f"<p>{body}</p>",
        "StrippedTextReply": body,
        "Tag": "",
        "Headers": [{"Name": "X-Spam-Status", "Value": "No"}],
        "Attachments": [],
    }


def lookup_customer_email(database_url: str, customer_id: str) -> str:
    """customers.email for an id, read from the system of record."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def query() -> str | None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(
                    text("SELECT email FROM customers WHERE id = :id"), {"id": customer_id}
                )
                row = result.first()
                return None if row is None else str(row[0])
        finally:
            await engine.dispose()

    try:
        found = asyncio.run(query())
    except Exception as error:
        raise typer.BadParameter(
            f"cannot read customer {customer_id} from {database_url}: {error}"
        ) from None
    if found is None:
        raise typer.BadParameter(f"no customer {customer_id!r} in {database_url}")
    return found
