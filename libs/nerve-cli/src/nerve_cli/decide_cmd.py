"""`nerve decide`: approve / edit / reject a pending refund or escalation.

The decision goes through the gateway's decision endpoint (`POST /decisions/{token}`), the same
door a reviewer's Slack link opens: the gateway stores the decision first and then publishes
`refund/approval.decided` / `escalation/decision.made`, so a decision made before the worker's
wait is registered is still honoured. Either follow a link you received (`--link`) or let the CLI
sign a fresh single-use token with the shared decision secret (`DECISION_TOKEN_SECRET`).

What is decided follows from the request id, never from a default: refund request ids start
with `rfr_`, escalation ids with `esc_` (the prefixes the support worker gives them), so the id
`nerve pending` lists is all `nerve decide` needs.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Annotated, Literal

import httpx
import typer
from rich.console import Console
from rich.table import Table
from service_kit.decision_tokens import decision_url, issue_decision_token

from .options import DEFAULT_DATABASE_URL, DEFAULT_GATEWAY_URL, DatabaseUrl
from .stack import DEV_DEFAULTS

console = Console()
err = Console(stderr=True)

Decision = Literal["approve", "edit", "reject"]
# The id prefix of each kind of request (support-worker: new_id("rfr") / new_id("esc")).
KIND_BY_PREFIX = {"rfr_": "refund", "esc_": "escalation"}


def kind_of(request_id: str) -> str:
    """`refund` or `escalation`, read from the request id's prefix."""
    for prefix, kind in KIND_BY_PREFIX.items():
        if request_id.startswith(prefix):
            return kind
    raise typer.BadParameter(
        f"{request_id!r} is neither a refund request id (rfr_...) nor an escalation id "
        "(esc_...); `nerve pending` lists the open ones"
    )


def decide(
    decision: Annotated[str, typer.Argument(help="approve, edit or reject.")],
    request_id: Annotated[
        str | None,
        typer.Argument(help="refund_requests.id or escalations.id (not needed with --link)."),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="refund or escalation; optional, it follows from the request id."),
    ] = None,
    reviewer: Annotated[str, typer.Option(help="Who decides (audited).")] = "cli-reviewer",
    text: Annotated[str | None, typer.Option("--text", help="The edited reply (for edit).")] = None,
    link: Annotated[
        str | None, typer.Option("--link", help="A decision link from a notification.")
    ] = None,
    gateway_url: Annotated[
        str, typer.Option("--gateway-url", envvar="NERVE_GATEWAY_URL")
    ] = DEFAULT_GATEWAY_URL,
    secret: Annotated[
        str | None,
        typer.Option("--secret", envvar="DECISION_TOKEN_SECRET", help="Decision token secret."),
    ] = None,
) -> None:
    """Approve, edit or reject a pending request through the gateway."""
    if decision not in ("approve", "edit", "reject"):
        raise typer.BadParameter(f"decision must be approve, edit or reject, not {decision!r}")
    if decision == "edit" and not text:
        raise typer.BadParameter("edit needs --text with the edited reply")
    if kind is not None and kind not in ("refund", "escalation"):
        raise typer.BadParameter(f"kind must be refund or escalation, not {kind!r}")
    if link is None:
        if not request_id:
            raise typer.BadParameter("give a REQUEST_ID or --link")
        implied = kind_of(request_id)
        if kind is not None and kind != implied:
            raise typer.BadParameter(f"{request_id} is {implied} request id, not {kind}")
        kind = implied
        if decision == "edit" and kind == "refund":
            raise typer.BadParameter("a refund is approved or rejected; edit is for escalations")
        if not secret:
            # `nerve dev` runs the gateway with this development-only secret (production
            # refuses `dev-` values), so the local loop works without configuration.
            secret = DEV_DEFAULTS["DECISION_TOKEN_SECRET"]
            err.print("[dim]DECISION_TOKEN_SECRET unset: using the `nerve dev` default[/dim]")
        token = issue_decision_token(
            secret,
            kind=kind,  # type: ignore[arg-type]
            request_id=request_id,
            reviewer=reviewer,
            ttl=timedelta(minutes=10),
        )
        link = decision_url(gateway_url, token)
    status, body = post_decision(link, decision, text)
    if status >= 300:
        err.print(f"[red]decision refused: {status} {body}[/red]")
        raise typer.Exit(1)
    what = f"{kind} {request_id}" if request_id else "request"
    console.print(f"{decision} recorded for {what} ({status})")


def pending(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """Refunds and escalations waiting for a reviewer (read from the system of record)."""
    rows = query_pending(database_url)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table()
    # The id is what `nerve decide` needs: fold it on a narrow terminal, never cut it.
    widest = max((len(row["id"]) for row in rows), default=10)
    table.add_column("request id", overflow="fold", min_width=widest)
    for header in ("kind", "amount", "customer", "created"):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"], row["kind"], row["amount"], row["customer_id"], str(row["created_at"])
        )
    console.print(table)
    console.print(
        f"{len(rows)} pending; decide with: uv run nerve decide approve|reject <request id> "
        "(escalations also: edit <request id> --text ...)"
    )


def query_pending(database_url: str) -> list[dict[str, str]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    refunds = text(
        "SELECT id, customer_id, amount_cents, currency, created_at FROM refund_requests "
        "WHERE status IN ('pending', 'awaiting_approval') ORDER BY created_at"
    )
    escalations = text(
        "SELECT id, customer_id, created_at FROM escalations "
        "WHERE status = 'pending' ORDER BY created_at"
    )

    async def run() -> list[dict[str, str]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                found = [
                    {
                        "kind": "refund",
                        "id": str(r.id),
                        "customer_id": str(r.customer_id),
                        "amount": f"{r.amount_cents / 100:.2f} {str(r.currency).upper()}",
                        "created_at": str(r.created_at),
                    }
                    for r in await conn.execute(refunds)
                ]
                found += [
                    {
                        "kind": "escalation",
                        "id": str(r.id),
                        "customer_id": str(r.customer_id),
                        "amount": "",
                        "created_at": str(r.created_at),
                    }
                    for r in await conn.execute(escalations)
                ]
                return found
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except Exception as error:
        err.print(f"[red]cannot read pending requests from {database_url}: {error}[/red]")
        raise typer.Exit(1) from None


def post_decision(link: str, decision: str, text: str | None) -> tuple[int, str]:
    """POST the decision to a decision link; returns (status, body text)."""
    payload: dict[str, str] = {"decision": decision}
    if text:
        payload["edited_text"] = text
    try:
        response = httpx.post(link, json=payload, timeout=10.0)
    except httpx.HTTPError as error:
        return 599, f"gateway unreachable: {error}"
    return response.status_code, response.text[:500]
