"""How runs and steps look in a terminal, and as JSON for scripts.

Ids are copied into the next command, so they are never cut: a table needs a wide terminal, so on
a narrow one each run (or step) prints as two lines instead of a table that would crop or fold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer
from engine_client import RunSummary, StepSpan, iso
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

console = Console()


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped (a script reads it; rich would fold long lines)."""
    typer.echo(json.dumps(value, default=str, indent=2))


def id_column(table: Table, header: str = "run id") -> None:
    """Ids are copied into the next command: never cut one, fold it if the terminal is narrow."""
    table.add_column(header, overflow="fold", min_width=26)


WIDE_TABLE = 128  # the runs table needs about this many columns to show every cell on a line


def runs_table(runs: Sequence[RunSummary], *, width: int | None = None) -> RenderableType:
    """A table on a wide terminal; on a narrow one, two lines per run (a table would have to
    crop or fold the cells, ids included)."""
    if (width or console.width) >= WIDE_TABLE:
        table = Table()
        id_column(table)
        for header in ("function", "status", "started", "ended"):
            table.add_column(header, overflow="fold")
        for run in runs:
            table.add_row(
                run.run_id,
                function_label(run),
                run.status.value,
                iso(run.started_at or run.queued_at),
                iso(run.ended_at),
            )
        return table
    lines = Text()
    for run in runs:
        lines.append(run.run_id, style="bold")
        lines.append(f"  {run.status.value:<9}  {function_label(run)}\n")
        ended = f"  ended {iso(run.ended_at)}" if run.ended_at else ""
        lines.append(f"    started {iso(run.started_at or run.queued_at)}{ended}\n", style="dim")
    lines.rstrip()
    return lines


def function_label(run: RunSummary) -> str:
    if run.app_id and run.function_id:
        return f"{run.app_id}/{run.function_id}"
    return run.function_id or run.function_name or (run.function_internal_id or "")


def steps_table(steps: Sequence[StepSpan]) -> RenderableType:
    """The steps of a run: a table on a wide terminal, two lines per step on a narrow one."""
    if console.width >= WIDE_TABLE:
        table = Table()
        for header in ("step", "op", "status", "tries", "started", "ended"):
            table.add_column(header, overflow="fold")
        for step in steps:
            table.add_row(
                step.name,
                step.op or "",
                step.status.value,
                str(step.attempts),
                iso(step.started_at or step.queued_at),
                iso(step.ended_at),
            )
        return table
    lines = Text()
    for step in steps:
        lines.append(step.name, style="bold")
        tries = f"  tries={step.attempts}" if step.attempts > 1 else ""
        lines.append(f"  {step.status.value}  {step.op or ''}{tries}\n")
        ended = f"  ended {iso(step.ended_at)}" if step.ended_at else ""
        lines.append(f"    started {iso(step.started_at or step.queued_at)}{ended}\n", style="dim")
    lines.rstrip()
    return lines
