"""`nerve send`, `nerve email`, `nerve catalog`: put work into the platform."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import types
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import httpx
import typer
from engine_client import TERMINAL_STATUSES, EngineError, RunStatus, RunSummary
from rich.console import Console
from rich.table import Table
from shared_events.base import EventDataError
from shared_events.catalog import CATALOG, VARIANTS, parse_any

from .options import (
    DEFAULT_DATABASE_URL,
    DEFAULT_ENGINE_URL,
    DEFAULT_GATEWAY_URL,
    DatabaseUrl,
    EngineUrl,
    EventKey,
    SigningKey,
    engine_client,
    parse_fields,
)
from .render import print_json, runs_table
from .review_hints import print_reviewer_hint, reviewer_waits

console = Console()
err = Console(stderr=True)


def catalog(
    name: Annotated[str | None, typer.Argument(help="Show one event's fields.")] = None,
) -> None:
    """List the event catalog (or one event's typed fields), descriptions in full."""
    if name is None:
        table = Table("event", "description", show_lines=True)
        table.columns[0].overflow = "fold"
        table.columns[0].no_wrap = True
        table.columns[1].overflow = "fold"
        for event_name, model in sorted(CATALOG.items()):
            shapes = [_doc(model)]
            shapes += [f"variant '{v.variant}': {_doc(v)}" for v in VARIANTS.get(event_name, ())]
            table.add_row(event_name, "\n\n".join(shapes))
        console.print(table)
        return
    model = _model(name)
    for shape in (model, *VARIANTS.get(name, ())):
        title = name if shape.variant is None else f"{name} (variant '{shape.variant}')"
        console.print(f"[bold]{title}[/bold] v{shape.version}: {_doc(shape)}", soft_wrap=True)
        table = Table("field", "type", "required", "description")
        for column in table.columns:
            column.overflow = "fold"
        for field_name, info in shape.model_fields.items():
            table.add_row(
                field_name,
                _type_name(info.annotation),
                "yes" if info.is_required() else "",
                info.description or "",
            )
        console.print(table)


def _doc(model: Any) -> str:
    """The model's whole docstring as one paragraph (never cut)."""
    return " ".join(inspect.cleandoc(model.__doc__ or "").split())


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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Send one catalog event, validated against its model (or one of its documented variants,
    e.g. the course's `{email_text, customer_id}`) before it leaves."""
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
        # The catalog shape, or a documented variant (e.g. the course's hand-sent shapes).
        event = parse_any(name, payload)
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
        earlier = earlier_event(engine, wire_id, name, ids[0]) if event_id else None
        if not as_json:
            if earlier is None:
                console.print(f"sent {name} id={wire_id} engine_id={ids[0]}", soft_wrap=True)
            else:
                console.print(
                    f"duplicate: an event with id={wire_id} was already received "
                    f"(engine_id={earlier.get('internal_id')}, at {earlier.get('received_at')}); "
                    "the engine deduplicated this one (it stores it, but starts no new run)",
                    soft_wrap=True,
                )
        if wait:

            def read_runs() -> list[RunSummary]:
                # The Event API answered the internal id: its runs can be read directly. A
                # re-sent --id is stored again but deduplicated: its runs are the first one's.
                runs = engine.event_runs(ids[0])
                if runs or event_id is None:
                    return runs
                return engine.runs_for_event_id(wire_id, name=name)

            runs = wait_for_runs(read_runs, wire_id, timeout=timeout)
            report_runs(runs, as_json=as_json, event={"id": wire_id, "internal_id": ids[0]})
            if not runs or any(run.status != RunStatus.COMPLETED for run in runs):
                raise typer.Exit(1)
        elif as_json:
            described: dict[str, Any] = {"id": wire_id, "internal_id": ids[0]}
            if earlier is not None:
                described["duplicate_of"] = earlier.get("internal_id")
            print_json({"event": described})


def earlier_event(engine: Any, event_id: str, name: str, internal_id: str) -> dict[str, Any] | None:
    """The first stored event with this producer id within the 24 h dedup window, when it is not
    the one just sent: the engine keeps the re-sent one but runs nothing for it."""
    since = datetime.now(UTC) - timedelta(hours=24)
    try:
        found = engine.find_events(event_id, name=name, received_after=since)
    except EngineError:
        return None  # cannot tell; report it as sent
    others = [e for e in found if str(e.get("internal_id") or "") != internal_id]
    return others[-1] if others else None  # newest first: the last is the original


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


def wait_for_runs(
    read_runs: Callable[[], list[RunSummary]],
    what: str,
    *,
    timeout: float,
    parked: Callable[[list[RunSummary]], list[dict[str, str]]] | None = None,
) -> list[RunSummary]:
    """Poll until the event's runs exist and have all ended (or, with `parked`, wait for a
    human), and a second read agrees.

    The second read guards against fan-out: one function's run can finish before another
    function's run for the same event has been created.
    """
    deadline = time.monotonic() + timeout
    runs: list[RunSummary] = []
    settled: frozenset[str] | None = None
    with err.status(f"waiting for runs of {what}") as status:
        while time.monotonic() < deadline:
            try:
                runs = read_runs()
            except EngineError as error:
                err.print(f"[red]{error}[/red]", soft_wrap=True)
                return runs
            done = sum(run.status in TERMINAL_STATUSES for run in runs)
            if parked is not None and runs and done < len(runs):
                done += len({wait["run_id"] for wait in parked(runs)})
            status.update(f"{what}: {done}/{len(runs)} run(s) finished")
            ids = frozenset(run.run_id for run in runs)
            if runs and done == len(runs):
                if settled == ids:
                    return runs
                settled = ids
            else:
                settled = None
            time.sleep(0.3)
    err.print(f"[yellow]timed out after {timeout:.0f}s waiting for {what}[/yellow]")
    return runs


def report_runs(
    runs: list[RunSummary],
    *,
    as_json: bool,
    event: dict[str, str] | None = None,
    waiting: list[dict[str, str]] | None = None,
) -> None:
    if as_json:
        body: dict[str, Any] = {"event": event, "runs": [run.to_json() for run in runs]}
        if waiting is not None:
            body["waiting_for_reviewer"] = waiting
        print_json(body)
        return
    console.print(runs_table(runs))


def _model(name: str) -> Any:
    try:
        return CATALOG[name]
    except KeyError:
        raise typer.BadParameter(
            f"unknown event {name!r}; the catalog has: {', '.join(sorted(CATALOG))}"
        ) from None


def _type_name(annotation: Any) -> str:
    """A readable type: `'a' | 'b'` for a Literal (its values shown), `str | None`, `list[str]`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(value) for value in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(_type_name, args))}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
