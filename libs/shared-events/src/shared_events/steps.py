"""Typed wrappers around the step API, so a service never touches raw event dicts.

Used only from a service's `functions` module or package (the Inngest boundary).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import TypeVar

import inngest

from .base import EventDataError, EventModel

E = TypeVar("E", bound=EventModel)
MatchValue = str | int | bool


def cel_literal(value: MatchValue) -> str:
    """A CEL literal for a match value. Strings are JSON-quoted: CEL accepts JSON's escapes, so a
    value containing quotes or backslashes cannot break out of the expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot match on a {type(value).__name__}; use str, int or bool")


def match_expression(model: type[EventModel], match: Mapping[str, MatchValue]) -> str:
    """`async.data.<field> == <literal> && ...` for fields of `model` (unknown fields raise)."""
    if not match:
        raise ValueError("a wait needs at least one field to match on")
    clauses = []
    for field, value in match.items():
        if field not in model.model_fields:
            raise KeyError(f"{model.name} has no field {field!r}")
        clauses.append(f"async.data.{field} == {cel_literal(value)}")
    return " && ".join(clauses)


def catalog_shape_guard(model: type[EventModel]) -> str | None:
    """`async.data.<f> != null` for a required field only the catalog shape has, when the event
    has documented variants (catalog.VARIANTS): a hand-sent variant naming the same request must
    not resume the wait (it would fail validation there); its own consumer turns it into the
    catalog shape first."""
    from .catalog import VARIANTS

    variants = [v for v in VARIANTS.get(model.name, ()) if v is not model]
    if not variants or model.variant is not None:
        return None
    shared = {name for v in variants for name in v.model_fields}
    for name, info in model.model_fields.items():
        if info.is_required() and name not in shared:
            return f"async.data.{name} != null"
    return None


async def send_event(step: inngest.Step, step_id: str, event: EventModel, *, id: str) -> list[str]:
    """`step.send_event` for one typed event with its idempotency id."""
    return await step.send_event(step_id, event.to_event(id=id))


async def send_events(
    step: inngest.Step, step_id: str, events: Sequence[tuple[str, EventModel]]
) -> list[str]:
    """`step.send_event` for many typed events in one step: `[(id, event), ...]`."""
    if not events:
        return []
    return await step.send_event(step_id, [event.to_event(id=id) for id, event in events])


async def wait_for_event(
    step: inngest.Step,
    step_id: str,
    model: type[E],
    *,
    match: Mapping[str, MatchValue],
    timeout: datetime.timedelta,
) -> E | None:
    """Wait for a typed event whose data fields equal `match`; None on timeout.

    A resumed event whose data does not fit the model fails the run (NonRetriableError).
    """
    if_exp = match_expression(model, match)
    guard = catalog_shape_guard(model)
    if guard:
        if_exp = f"{if_exp} && {guard}"
    event = await step.wait_for_event(step_id, event=model.name, if_exp=if_exp, timeout=timeout)
    if event is None:
        return None
    try:
        return model.from_data(event.data)
    except EventDataError as error:
        raise inngest.NonRetriableError(str(error)) from error
