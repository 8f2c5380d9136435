"""`nerve send`, `nerve email`, `nerve catalog`: put work into the platform."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from shared_events.base import EventDataError
from shared_events.catalog import CATALOG

from .engine import TERMINAL_STATUSES, EngineClient, EngineError, RunSummary
from .options import (
    DEFAULT_ENGINE_URL,
    DEFAULT_GATEWAY_URL,
    EngineUrl,
    EventKey,
    SigningKey,
    engine_client,
    parse_fields,
)

console = Console()
err = Console(stderr=True)


def catalog(
    name: Annotated[str | None, typer.Argument(help="Show one event's fields.")] = None,
) -> None:
    """List the event catalog (or one event's typed fields)."""
    if name is None:
        table = Table("event", "description")
        for event_name, model in sorted(CATALOG.items()):
            doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
            table.add_row(event_name, doc)
        console.print(table)
        return
    model = _model(name)
    table = Table("field", "type", "required", title=name)
    for field_name, info in model.model_fields.items():
        table.add_row(field_name, _type_name(info.annotation), "yes" if info.is_required() else "")
    console.print(table)


def send(
    name: Annotated[str, typer.Argument(help="Catalog event name, e.g. ticket/resolved.")],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", "-f", help="key=value (repeatable); typed by the catalog model."),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="The whole data object as JSON.")
    ] = None,
    event_id: Annotated[
        str | None,
        typer.Option("--id", help="Idempotency id (the engine dedups on it for 24 h)."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the runs it triggers.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Send one catalog event, validated against its model before it leaves."""
    model = _model(name)
    payload: dict[str, Any] = {}
    if data:
        try:
            loaded = json.loads(data)
        except ValueError as error:
            raise typer.BadParameter(f"--data is not JSON: {error}") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--data must be a JSON object")
        payload.update(loaded)
    payload.update(parse_fields(field or []))
    try:
        event = model.from_data(payload)
    except EventDataError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if not model.sendable:
        err.print(f"[red]{name} is emitted by the engine and cannot be sent[/red]")
        raise typer.Exit(2)
    wire_id = event_id or f"cli-{uuid.uuid4().hex}"
    with engine_client(engine_url, event_key, signing_key) as engine:
        try:
            ids = engine.send_events([event.to_wire(id=wire_id)])
        except EngineError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        console.print(f"sent {name} id={wire_id} engine_id={ids[0]}")
        if wait:
            runs = wait_for_event_runs(engine, wire_id, name=name, timeout=timeout)
            _print_runs(runs)
            if any(run.status != "Completed" for run in runs):
                raise typer.Exit(1)


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
    database_url: Annotated[
        str, typer.Option("--database-url", envvar="DATABASE_URL")
    ] = "sqlite+aiosqlite:///.nerve/nerve.db",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the runs it triggers.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Fire a test email (the course's fire_test_email) through the gateway's Postmark webhook.

    It goes through the real front door: the gateway authenticates it, stores the text (claim
    check) and publishes customer/email.received with id `postmark-{MessageID}`.
    """
    if not from_address:
        if not customer_id:
            raise typer.BadParameter("give --customer-id or --from")
        from_address = lookup_customer_email(database_url, customer_id)
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
    console.print(f"accepted MessageID={message_id} event_id={event_id}")
    if wait:
        with engine_client(engine_url, event_key, signing_key) as engine:
            runs = wait_for_event_runs(
                engine, event_id, name="customer/email.received", timeout=timeout
            )
        _print_runs(runs)
        if any(run.status != "Completed" for run in runs):
            raise typer.Exit(1)


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


def wait_for_event_runs(
    engine: EngineClient, event_id: str, *, name: str | None, timeout: float
) -> list[RunSummary]:
    """Find the event by its id, then poll its runs until every one is terminal."""
    deadline = time.monotonic() + timeout
    runs: list[RunSummary] = []
    with console.status(f"waiting for runs of {event_id}") as status:
        stored: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            if stored is None:
                stored = engine.find_event(event_id, name=name)
            if stored is not None:
                internal = str(stored.get("internal_id") or stored.get("id"))
                runs = engine.event_runs(internal)
                done = sum(run.status in TERMINAL_STATUSES for run in runs)
                status.update(f"{event_id}: {done}/{len(runs)} runs finished")
                if runs and done == len(runs):
                    return runs
            time.sleep(0.3)
    err.print(f"[yellow]timed out after {timeout:.0f}s waiting for {event_id}[/yellow]")
    return runs


def _print_runs(runs: list[RunSummary]) -> None:
    table = Table("function", "status")
    table.add_column("run id", no_wrap=True)
    for run in runs:
        table.add_row(run.function_id, run.status, run.run_id)
    console.print(table)


def _model(name: str) -> Any:
    try:
        return CATALOG[name]
    except KeyError:
        raise typer.BadParameter(
            f"unknown event {name!r}; the catalog has: {', '.join(sorted(CATALOG))}"
        ) from None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
