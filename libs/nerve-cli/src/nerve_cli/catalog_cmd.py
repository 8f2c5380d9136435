"""`nerve catalog`: the event catalog, or one event's typed fields (and its variants)."""

from __future__ import annotations

import inspect
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from rich.console import Console
from rich.table import Table
from shared_events.catalog import CATALOG, VARIANTS

console = Console()


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
    model = catalog_model(name)
    for shape in (model, *VARIANTS.get(name, ())):
        title = name if shape.variant is None else f"{name} (variant '{shape.variant}')"
        console.print(f"[bold]{title}[/bold] v{shape.version}: {_doc(shape)}", soft_wrap=True)
        table = Table("field", "type", "required", "description")
        for column in table.columns:
            column.overflow = "fold"
        for field_name, info in shape.model_fields.items():
            table.add_row(
                field_name,
                type_name(info.annotation),
                "yes" if info.is_required() else "",
                info.description or "",
            )
        console.print(table)


def _doc(model: Any) -> str:
    """The model's whole docstring as one paragraph (never cut)."""
    return " ".join(inspect.cleandoc(model.__doc__ or "").split())


def catalog_model(name: str) -> Any:
    try:
        return CATALOG[name]
    except KeyError:
        raise typer.BadParameter(
            f"unknown event {name!r}; the catalog has: {', '.join(sorted(CATALOG))}"
        ) from None


def type_name(annotation: Any) -> str:
    """A readable type: `'a' | 'b'` for a Literal (its values shown), `str | None`, `list[str]`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(value) for value in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(type_name, args))}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
