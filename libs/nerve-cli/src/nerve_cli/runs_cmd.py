"""`nerve runs`, `nerve rerun`, `nerve cancel`: inspect and repair runs over the REST API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .engine import EngineError, RunSummary
from .options import (
    DEFAULT_ENGINE_URL,
    EngineUrl,
    EventKey,
    SigningKey,
    engine_client,
    parse_moment,
)

console = Console()
err = Console(stderr=True)

runs_app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)


def _slug(app_id: str | None, function: str) -> str:
    """The composite function slug `<app>-<fn>` (the id the REST API filters by)."""
    if app_id and not function.startswith(f"{app_id}-"):
        return f"{app_id}-{function}"
    return function


@runs_app.command("list")
def list_runs(
    function: Annotated[
        str | None,
        typer.Option("--function", help="Function id: slug `app-fn`, or local id with --app."),
    ] = None,
    app_id: Annotated[
        str | None, typer.Option("--app", help="App id, e.g. support-worker.")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Completed, Failed, Running, ...")
    ] = None,
    since: Annotated[str, typer.Option(help="Window start: 30m, 2h, 1d or ISO time.")] = "1d",
    until: Annotated[str, typer.Option(help="Window end.")] = "now",
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Runs in a time window, filtered by function and status."""
    with engine_client(engine_url, event_key, signing_key) as engine:
        try:
            runs = engine.list_runs(
                function_id=_slug(app_id, function) if function else None,
                app_id=app_id if not function else None,
                status=status,
                since=parse_moment(since),
                until=parse_moment(until),
                limit=limit,
            )
        except EngineError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    if as_json:
        for run in runs:
            console.print_json(json.dumps(dict(run.raw), default=str))
        return
    table = Table("function", "status", "started", "ended")
    table.add_column("run id", no_wrap=True)
    for run in runs:
        table.add_row(run.function_id, run.status, run.started_at, run.ended_at or "", run.run_id)
    console.print(table)
    console.print(f"{len(runs)} run(s)")


@runs_app.command("inspect")
def inspect_run(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """A run's status, output and steps (from its trace)."""
    with engine_client(engine_url, event_key, signing_key) as engine:
        try:
            run = engine.get_run(run_id)
            trace = engine.run_trace(run_id)
        except EngineError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    console.print(f"run {run.run_id}  function={run.function_id}  status={run.status}")
    console.print(f"started={run.started_at}  ended={run.ended_at}")
    if run.raw.get("output") is not None:
        console.print(f"output={json.dumps(run.raw['output'], default=str)[:500]}")
    steps = list(trace_steps(trace))
    table = Table("step", "status", "attempts", "started", "ended")
    for step in steps:
        table.add_row(
            str(step.get("name") or step.get("step_id") or step.get("id") or "?"),
            str(step.get("status") or ""),
            str(step.get("attempts") or step.get("attempt") or ""),
            str(step.get("started_at") or step.get("queued_at") or ""),
            str(step.get("ended_at") or ""),
        )
    console.print(table)


def trace_steps(trace: Any) -> list[Mapping[str, Any]]:
    """Flatten a v2 trace (a span tree) into its step spans, in order."""
    found: list[Mapping[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, Mapping):
            return
        children = node.get("children") or node.get("steps") or node.get("spans")
        is_step = node.get("step_id") or node.get("step_op") or node.get("op")
        is_leaf = children is None and node.get("name") and node.get("status")
        if is_step or is_leaf:
            found.append(node)
        if children is not None:
            walk(children)

    walk(trace.get("trace", trace) if isinstance(trace, Mapping) else trace)
    return found


def rerun(
    run_id: Annotated[
        str | None, typer.Argument(help="Rerun this one run (or use --function --failed).")
    ] = None,
    function: Annotated[
        str | None, typer.Option("--function", help="Every matching run of this function.")
    ] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="App id for a local fn id.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs.")] = True,
    since: Annotated[str, typer.Option(help="Window start: 30m, 2h, 1d or ISO time.")] = "1d",
    until: Annotated[str, typer.Option(help="Window end.")] = "now",
    from_step: Annotated[
        str | None, typer.Option("--from-step", help="Replay from this step id (memos before it).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 1000,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Rerun one run, or every failed run of a function in a window (from the top or a step)."""
    if (run_id is None) == (function is None):
        raise typer.BadParameter("give a RUN_ID or --function (not both)")
    with engine_client(engine_url, event_key, signing_key) as engine:
        try:
            if run_id is not None:
                targets = [run_id]
            else:
                assert function is not None
                runs = engine.list_runs(
                    function_id=_slug(app_id, function),
                    status=["Failed"] if failed else None,
                    since=parse_moment(since),
                    until=parse_moment(until),
                    limit=limit,
                )
                targets = [run.run_id for run in runs if not failed or run.status == "Failed"]
        except EngineError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        if not targets:
            console.print("nothing to rerun")
            return
        new_ids: list[str] = []
        problems: list[str] = []
        with _progress() as progress:
            task = progress.add_task("rerunning", total=len(targets))
            for target in targets:
                try:
                    new_ids.append(engine.rerun(target, from_step=from_step))
                except EngineError as error:
                    problems.append(f"{target}: {error}")
                progress.advance(task)
    for old, new in zip(targets, new_ids, strict=False):
        console.print(f"rerun {old} -> {new}")
    console.print(f"{len(new_ids)} rerun(s) started")
    if problems:
        for problem in problems:
            err.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)


def cancel(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Cancel these runs (or use --function).")
    ] = None,
    function: Annotated[
        str | None, typer.Option("--function", help="Bulk: the function's local id.")
    ] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="Bulk: the app id.")] = None,
    since: Annotated[str | None, typer.Option(help="Bulk: runs started after (30m, ISO).")] = None,
    until: Annotated[str, typer.Option(help="Bulk: runs started before.")] = "now",
    if_expression: Annotated[
        str | None, typer.Option("--if", help="Bulk: CEL over the triggering `event`.")
    ] = None,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Cancel runs by id, or in bulk by app + function + window + expression."""
    with engine_client(engine_url, event_key, signing_key) as engine:
        if run_ids:
            problems = 0
            with _progress() as progress:
                task = progress.add_task("cancelling", total=len(run_ids))
                for run_id in run_ids:
                    try:
                        engine.cancel_run(run_id)
                    except EngineError as error:
                        problems += 1
                        err.print(f"[red]{run_id}: {error}[/red]")
                    progress.advance(task)
            console.print(f"{len(run_ids) - problems} run(s) cancelled")
            if problems:
                raise typer.Exit(1)
            return
        if not function or not app_id:
            raise typer.BadParameter("give RUN_IDS, or --app and --function for a bulk cancel")
        local_id = function.removeprefix(f"{app_id}-")
        try:
            result = engine.bulk_cancel(
                app_id=app_id,
                function_id=local_id,
                started_after=parse_moment(since) if since else None,
                started_before=parse_moment(until),
                if_expression=if_expression,
            )
        except EngineError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    console.print(f"bulk cancellation accepted: {json.dumps(result, default=str)}")


def invoke(
    app_id: Annotated[str, typer.Argument(help="App id, e.g. support-worker.")],
    function: Annotated[str, typer.Argument(help="Function id, e.g. daily-health-check.")],
    data: Annotated[str, typer.Option("--data", help="JSON object for event.data.")] = "{}",
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Invoke a function now (also a cron function, outside its schedule)."""
    try:
        payload = json.loads(data)
    except ValueError as error:
        raise typer.BadParameter(f"--data is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise typer.BadParameter("--data must be a JSON object")
    with engine_client(engine_url, event_key, signing_key) as engine:
        try:
            result = engine.invoke(app_id, function, payload)
        except EngineError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    console.print(f"invoked {app_id}/{function}: {json.dumps(result, default=str)}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    )


def summarize(runs: list[RunSummary]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts
