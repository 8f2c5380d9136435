"""`nerve runs`, `nerve rerun`, `nerve cancel`, `nerve invoke`: inspect and repair runs.

Everything goes through the engine's public v2 REST API in the real Inngest server's dialect
(`engine_client`). Functions are named `app/function` (`support-worker/handle-customer-email`),
or by their slug `app-function` (split at the longest app id the engine knows), or `--app` plus
the function's own id. Every listing has `--json` (one JSON array on stdout) for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

import typer
from engine_client import (
    EngineClient,
    EngineError,
    FunctionRef,
    RunStatus,
    RunSummary,
    iso,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .options import (
    DEFAULT_ENGINE_URL,
    EngineUrl,
    EventKey,
    SigningKey,
    engine_client,
    parse_moment,
)
from .render import function_label, print_json, runs_table, steps_table
from .runs_bulk import cancel_matching_runs, failed_runs_to_rerun

console = Console()
err = Console(stderr=True)

runs_app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)

FunctionOption = Annotated[
    str | None,
    typer.Option(
        "--function",
        help="app/function (support-worker/handle-customer-email), the slug app-function, "
        "or the function's own id with --app.",
    ),
]
AppOption = Annotated[str | None, typer.Option("--app", help="App id, e.g. support-worker.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


def fail(message: object) -> typer.Exit:
    err.print(f"[red]{message}[/red]", soft_wrap=True)
    return typer.Exit(1)


def resolve(engine: EngineClient, function: str, app_id: str | None) -> FunctionRef:
    try:
        return engine.resolve_function(function, app_id=app_id)
    except EngineError as error:
        raise fail(error) from None


def parse_statuses(values: Sequence[str] | None) -> list[RunStatus]:
    statuses = [RunStatus.parse(value) for value in values or ()]
    for value, status in zip(values or (), statuses, strict=True):
        if status in (RunStatus.UNKNOWN, RunStatus.WAITING):
            raise typer.BadParameter(
                f"--status {value!r}: use queued, running, completed, failed or cancelled"
            )
    return statuses


@runs_app.command("list")
def list_runs(
    function: FunctionOption = None,
    app_id: AppOption = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="completed, failed, running, queued, cancelled (repeat)."),
    ] = None,
    since: Annotated[str, typer.Option(help="Window start: 30m, 2h, 1d or ISO time.")] = "1d",
    until: Annotated[str, typer.Option(help="Window end.")] = "now",
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    as_json: JsonOption = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Runs queued in a time window, newest first, filtered by app, function and status."""
    statuses = parse_statuses(status)
    window = (parse_moment(since), parse_moment(until))
    with engine_client(engine_url, event_key, signing_key) as engine:
        ref = resolve(engine, function, app_id) if function else None
        try:
            runs = engine.list_runs(
                app_id=ref.app_id if ref else app_id,
                function_id=ref.function_id if ref else None,
                status=statuses,
                since=window[0],
                until=window[1],
                limit=limit,
            )
        except EngineError as error:
            raise fail(error) from None
    if as_json:
        print_json([run.to_json() for run in runs])
        return
    console.print(runs_table(runs))
    console.print(f"{len(runs)} run(s)")


@runs_app.command("inspect")
def inspect_run(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: JsonOption = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """A run's status, times, output and steps (from its trace)."""
    with engine_client(engine_url, event_key, signing_key) as engine:
        try:
            run = engine.get_run(run_id)
            trace = engine.run_trace(run_id)
        except EngineError as error:
            raise fail(error) from None
    steps = trace.steps
    if as_json:
        print_json({**run.to_json(), "steps": [step.to_json() for step in steps]})
        return
    console.print(f"run {run.run_id}", soft_wrap=True)
    console.print(f"function={function_label(run)}  status={run.status.value}", soft_wrap=True)
    console.print(
        f"queued={iso(run.queued_at)}  started={iso(run.started_at)}  ended={iso(run.ended_at)}"
        + (f"  duration={run.duration_ms}ms" if run.duration_ms is not None else ""),
        soft_wrap=True,
    )
    if run.output is not None:
        console.print(f"output={json.dumps(run.output, default=str)[:500]}", soft_wrap=True)
    if not steps:
        console.print("no steps (the function ran without step calls, or has not reached one)")
        return
    console.print(steps_table(steps))


def rerun(
    run_id: Annotated[
        str | None, typer.Argument(help="Rerun this one run (or use --function).")
    ] = None,
    function: FunctionOption = None,
    app_id: AppOption = None,
    since: Annotated[str, typer.Option(help="Bulk window start: 30m, 2h, 1d or ISO.")] = "1d",
    until: Annotated[str, typer.Option(help="Bulk window end.")] = "now",
    from_step: Annotated[
        str | None,
        typer.Option(
            "--from-step", help="Replay from this step (by name); the steps before it are memoized."
        ),
    ] = None,
    include_recovered: Annotated[
        bool,
        typer.Option(
            "--include-recovered",
            help="Bulk: also rerun failed runs whose event already has a later run.",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Bulk: at most this many runs.")] = 1000,
    as_json: JsonOption = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Rerun one run, or every failed run of a function in a window (from the top or a step).

    In bulk, a failed run whose triggering event already has a later run of the same function
    (an earlier rerun, finished or still going) is skipped, so nothing runs twice.
    """
    if (run_id is None) == (function is None):
        raise typer.BadParameter("give a RUN_ID or --function (not both)")
    skipped: list[RunSummary] = []
    with engine_client(engine_url, event_key, signing_key) as engine:
        if run_id is not None:
            targets = [run_id]
        else:
            assert function is not None
            ref = resolve(engine, function, app_id)
            try:
                failed, skipped = failed_runs_to_rerun(
                    engine,
                    ref,
                    since=parse_moment(since),
                    until=parse_moment(until),
                    limit=limit,
                    include_recovered=include_recovered,
                )
            except EngineError as error:
                raise fail(error) from None
            targets = [run.run_id for run in failed]
        results: list[dict[str, str]] = []
        with _progress(quiet=as_json) as progress:
            task = progress.add_task("rerunning", total=len(targets))
            for target in targets:
                try:
                    new_id = engine.rerun(target, from_step=from_step)
                    results.append({"run_id": target, "new_run_id": new_id})
                except EngineError as error:
                    results.append({"run_id": target, "error": str(error)})
                progress.advance(task)
    problems = [result for result in results if "error" in result]
    if as_json:
        print_json({"reruns": results, "skipped_recovered": [run.run_id for run in skipped]})
    else:
        for run in skipped:
            console.print(f"skip {run.run_id}: its event already has a later run", soft_wrap=True)
        for result in results:
            if "new_run_id" in result:
                console.print(f"rerun {result['run_id']} -> {result['new_run_id']}", soft_wrap=True)
        if not targets:
            console.print("nothing to rerun")
        else:
            console.print(f"{len(results) - len(problems)} rerun(s) started")
        for problem in problems:
            err.print(f"[red]{problem['run_id']}: {problem['error']}[/red]", soft_wrap=True)
    if problems:
        raise typer.Exit(1)


def cancel(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Cancel these runs (or use --function).")
    ] = None,
    function: FunctionOption = None,
    app_id: AppOption = None,
    since: Annotated[
        str | None, typer.Option(help="Bulk: runs queued after (30m, 2h, ISO).")
    ] = None,
    until: Annotated[str, typer.Option(help="Bulk: runs queued before.")] = "now",
    if_expression: Annotated[
        str | None,
        typer.Option("--if", help="Bulk: CEL over the triggering `event`, e.g. event.data.x == 1."),
    ] = None,
    as_json: JsonOption = False,
    engine_url: EngineUrl = DEFAULT_ENGINE_URL,
    event_key: EventKey = "dev",
    signing_key: SigningKey = None,
) -> None:
    """Cancel runs by id, or every running / queued run of a function in a window.

    A bulk cancel lists the function's running and queued runs (`GET /v2/runs`), keeps those
    whose triggering event matches `--if`, and cancels each (`POST /v2/runs/{id}/cancel`).
    """
    with engine_client(engine_url, event_key, signing_key) as engine:
        if run_ids:
            if function:
                raise typer.BadParameter("give RUN_IDS or --function (not both)")
            targets = list(run_ids)
        elif function:
            ref = resolve(engine, function, app_id)
            try:
                targets = cancel_matching_runs(
                    engine,
                    ref,
                    since=parse_moment(since) if since else None,
                    until=parse_moment(until),
                    if_expression=if_expression,
                )
            except (EngineError, ValueError) as error:
                raise fail(error) from None
        else:
            raise typer.BadParameter("give RUN_IDS, or --function for a bulk cancel")
        results = _cancel_each(engine, targets, quiet=as_json)
    problems = [r for r in results if r["outcome"] == "error"]
    if as_json:
        print_json(results)
    else:
        for result in results:
            if result["outcome"] != "cancelled":
                style = "red" if result["outcome"] == "error" else "yellow"
                err.print(f"[{style}]{result['run_id']}: {result['message']}[/{style}]")
        done = sum(r["outcome"] == "cancelled" for r in results)
        console.print(f"{done} run(s) cancelled")
    if problems:
        raise typer.Exit(1)


def _cancel_each(
    engine: EngineClient, run_ids: Sequence[str], *, quiet: bool
) -> list[dict[str, str]]:
    results: list[dict[str, str]] = []
    with _progress(quiet=quiet) as progress:
        task = progress.add_task("cancelling", total=len(run_ids))
        for run_id in run_ids:
            try:
                engine.cancel_run(run_id)
                results.append({"run_id": run_id, "outcome": "cancelled", "message": ""})
            except EngineError as error:
                # Already cancelled is what was asked for; an ended run or anything else is not.
                outcome = "already_cancelled" if error.code == "run_already_cancelled" else "error"
                results.append({"run_id": run_id, "outcome": outcome, "message": str(error)})
            progress.advance(task)
    return results


def invoke(
    app_id: Annotated[str, typer.Argument(help="App id, e.g. support-worker.")],
    function: Annotated[str, typer.Argument(help="Function id, e.g. daily-health-check.")],
    data: Annotated[str, typer.Option("--data", help="JSON object for event.data.")] = "{}",
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Same key -> the same run.")
    ] = None,
    as_json: JsonOption = False,
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
            result = engine.invoke(app_id, function, payload, idempotency_key=idempotency_key)
        except EngineError as error:
            if error.code == "function_skipped":
                raise fail(
                    f"{app_id}/{function} was not started: {error} (the engine skips an "
                    "invocation a singleton, rate limit or pause of the function rules out)"
                ) from None
            raise fail(error) from None
    if as_json:
        print_json({"run_id": result.run_id, "reused": result.reused})
        return
    note = " (idempotency key seen before: the earlier run)" if result.reused else ""
    console.print(f"invoked {app_id}/{function}: run {result.run_id}{note}", soft_wrap=True)


def _progress(*, quiet: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=quiet,
    )
