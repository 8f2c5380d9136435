"""Markdown (a mermaid graph and tables) for the generated section of docs/architecture.md.

Used by scripts/architecture_graph.py; everything is sorted so the output is stable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from architecture_scan import Function, Graph, Hop
from shared_events import CATALOG
from shared_events.catalog import VARIANTS

EXTERNAL = {"operator": "operator (nerve send, dashboard, MCP)", "engine": "Inngest engine"}


def node_id(prefix: str, text: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', text)}"


def fn_node(fn: Function) -> str:
    return node_id("fn", f"{fn.app}__{fn.local_id}")


def producers(event: str) -> list[tuple[str, str | None]]:
    """(producer, variant or None) for an event name, over its catalog shape and variants."""
    shapes = [CATALOG[event], *VARIANTS.get(event, ())]
    return sorted({(p, shape.variant) for shape in shapes for p in shape.producers}, key=str)


def subscribers(graph: Graph, event: str) -> list[Function]:
    return [fn for fn in graph.functions if event in {name for name, _ in fn.events}]


def cancelled(graph: Graph, event: str) -> list[Function]:
    return [fn for fn in graph.functions if event in fn.cancelled_by]


def waiting(graph: Graph, event: str) -> list[str]:
    return sorted(service for service, waits in graph.waits.items() if event in waits)


def link(text: str, source: str, doc_dir: Path, root: Path) -> str:
    return f"[{text}]({Path(os.path.relpath(root / source, doc_dir)).as_posix()})"


def short(source: str) -> str:
    """`services/x/src/pkg/mod.py` -> `pkg/mod.py` (the link carries the full path)."""
    return source.split("/src/", 1)[-1]


def mermaid(graph: Graph) -> list[str]:
    lines = ["```mermaid", "flowchart LR"]
    used_external = sorted({p for event in CATALOG for p, _ in producers(event) if p in EXTERNAL})
    lines += [f'  {node_id("ext", p)}(["{EXTERNAL[p]}"])' for p in used_external]
    for service in graph.services:
        lines.append(f'  subgraph {node_id("svc", service.name)}["{service.name}"]')
        lines += [f'    {fn_node(fn)}["{fn.local_id}"]' for fn in service.functions]
        lines.append("  end")
    lines += [f'  {node_id("ev", event)}{{{{"{event}"}}}}' for event in sorted(CATALOG)]
    crons = {
        cron: f"cron_{n}"
        for n, cron in enumerate(sorted({c for f in graph.functions for c in f.crons}))
    }
    lines += [f'  {node}(["cron {cron}"])' for cron, node in crons.items()]
    for event in sorted(CATALOG):
        ev = node_id("ev", event)
        for producer in sorted({p for p, _ in producers(event)}):
            source = node_id("ext" if producer in EXTERNAL else "svc", producer)
            lines.append(f"  {source} --> {ev}")
        lines += [f"  {ev} --> {fn_node(fn)}" for fn in subscribers(graph, event)]
        lines += [f"  {ev} -.->|wait_for_event| {node_id('svc', s)}" for s in waiting(graph, event)]
        lines += [f"  {ev} -- cancel_on --x {fn_node(fn)}" for fn in cancelled(graph, event)]
    for fn in graph.functions:
        lines += [f"  {crons[cron]} --> {fn_node(fn)}" for cron in fn.crons]
    for caller, target in sorted({(e.caller, fn_node(e.target)) for e in graph.invokes}):
        lines.append(f"  {node_id('svc', caller)} -.->|step.invoke| {target}")
    return [*lines, "```"]


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    # A `|` inside a cell (`a || b` in an expression) would end the cell: escape it.
    return lines + [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows
    ]


def joined(items: Iterable[str]) -> str:
    return ", ".join(items) or "-"


def events_table(graph: Graph) -> list[str]:
    rows = []
    for event in sorted(CATALOG):
        senders = [p if v is None else f"{p} (`{v}` shape)" for p, v in producers(event)]
        rows.append(
            (
                f"`{event}`",
                joined(senders),
                joined(fn.label for fn in subscribers(graph, event)),
                joined(waiting(graph, event)),
                joined(fn.label for fn in cancelled(graph, event)),
            )
        )
    header = (
        "event",
        "sent by",
        "starts",
        "awaited by (`wait_for_event`)",
        "cancels (`cancel_on`)",
    )
    return table(header, rows)


def trigger_text(fn: Function) -> str:
    parts = [f"cron `{cron}`" for cron in fn.crons]
    for event, expression in fn.events:
        text = f"`{event}`" + (f" if `{expression}`" if expression else "")
        parts.append(text if event in CATALOG else f"{text} (not in the catalog)")
    return "; ".join(parts)


def functions_table(graph: Graph, doc_dir: Path, root: Path) -> list[str]:
    rows = [
        (
            f"{fn.label}",
            trigger_text(fn),
            joined(e.caller for e in graph.invokers_of(fn)),
            link(short(fn.source), fn.source, doc_dir, root),
        )
        for fn in graph.functions
    ]
    return table(("function", "triggered by", "invoked by (`step.invoke`)", "code"), rows)


def invokes_table(graph: Graph, doc_dir: Path, root: Path) -> list[str]:
    edges = sorted({(e.caller, e.target.label, e.contract or "", e.site) for e in graph.invokes})
    rows = [
        (
            caller,
            target,
            f"`shared_events.refs.{contract}`" if contract else "its own function",
            link(short(site), site, doc_dir, root),
        )
        for caller, target, contract, site in edges
    ]
    return table(("caller", "invokes", "through", "call site"), rows)


def walk_table(graph: Graph, hops: Sequence[Hop], doc_dir: Path, root: Path) -> list[str]:
    rows = []
    for number, hop in enumerate(hops, start=1):
        events = [f"on `{hop.on}`"] if hop.on else []
        events += [f"sends `{hop.sends}`"] if hop.sends else []
        events += [f"waits for `{hop.waits}`"] if hop.waits else []
        events += ["invoked"] if hop.invoked else []
        if hop.route:
            route = graph.route(hop.service, *hop.route)
            assert route is not None  # checked by architecture_graph.check_walks
            code = link(f"`{' '.join(hop.route)}`", route.source, doc_dir, root)
        else:
            fn = graph.function(hop.service, hop.function or "")
            assert fn is not None  # checked by architecture_graph.check_walks
            code = link(f"`{fn.local_id}`", fn.source, doc_dir, root)
        rows.append((str(number), hop.service, hop.caption, joined(events), code))
    return table(("#", "service", "what happens", "events", "code"), rows)


def render(graph: Graph, walks: Mapping[str, Sequence[Hop]], *, doc_dir: Path, root: Path) -> str:
    lines = [
        "<!-- Do not edit by hand: run `uv run python scripts/architecture_graph.py --write`. -->",
        "",
        "### The event graph",
        "",
        "Producers -> events -> the functions they start; dotted: `step.invoke` (from the calling",
        "service) and `wait_for_event` (to the waiting service); crossed: `cancel_on`.",
        "",
        *mermaid(graph),
        "",
        "### Events",
        "",
        *events_table(graph),
        "",
        "### Functions",
        "",
        *functions_table(graph, doc_dir, root),
        "",
        "### `step.invoke`",
        "",
        *invokes_table(graph, doc_dir, root),
        "",
    ]
    for title, hops in walks.items():
        lines += [f"### {title}", "", *walk_table(graph, hops, doc_dir, root), ""]
    return "\n".join(lines) + "\n"
