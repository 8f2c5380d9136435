"""`nerve send`: put one catalog event into the platform (and wait for its runs)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from engine_client import TERMINAL_STATUSES, EngineError, RunStatus, RunSummary
from rich.console import Console
from shared_events.base import EventDataError
from shared_events.catalog import parse_any

from .catalog_cmd import catalog_model
from .options import (
    DEFAULT_ENGINE_URL,
    EngineUrl,
    EventKey,
    SigningKey,
    engine_client,
    parse_fields,
)
from .render import print_json, runs_table

console = Console()
err = Console(stderr=True)


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
    model = catalog_model(name)
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
