"""The base class every catalog event derives from.

An event model is the typed `data` of one Inngest event. Its `name` and schema `version` are
class-level facts; the payload carries ids and small facts, never bodies (claim check).

`inngest` is imported lazily inside the helpers so domain code may use the models (to build or
read payloads) without importing the engine's SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    import inngest

# Key the engine adds to invoked/system event data; never part of a model.
_ENGINE_KEYS = frozenset({"_inngest"})


class EventDataError(ValueError):
    """Event data does not match its catalog model; the message names the field."""


def describe_validation_error(event_name: str, error: ValidationError) -> str:
    """One line per problem, each naming the field path, e.g. `data.customer_id: Field required`."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        problems.append(f"data.{path}: {item['msg']}")
    return f"invalid {event_name} event: " + "; ".join(problems)


class EventModel(BaseModel):
    """Typed data of one catalog event."""

    # Unknown keys are ignored so an older consumer keeps working when a producer adds an
    # optional field (a non-breaking change); `schemas --check` guards the breaking ones.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)

    name: ClassVar[str]
    version: ClassVar[int] = 1
    # None for the catalog shape; a name for a documented variant of the same event (see
    # `catalog.VARIANTS`): e.g. the course's hand-sent shapes.
    variant: ClassVar[str | None] = None
    # Engine-generated events (inngest/*) may be parsed but never sent.
    sendable: ClassVar[bool] = True
    # Who sends this event: service app ids (`ingest-gateway`, `support-worker`, ...), `operator`
    # (a person, through `nerve send`, the dashboard or MCP) or `engine` (Inngest itself). The
    # event graph in docs/architecture.md is generated from it (scripts/architecture_graph.py);
    # tests/repo/test_event_producers.py checks the services' code sends what is declared here.
    producers: ClassVar[tuple[str, ...]] = ()

    # -- building ---------------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_event(self, *, id: str, ts: int = 0) -> inngest.Event:
        """An `inngest.Event` with an idempotency id (the engine dedups on it for 24 h)."""
        import inngest

        if not self.sendable:
            raise ValueError(f"{self.name} is emitted by the engine and cannot be sent")
        if not id or not id.strip():
            raise ValueError(f"{self.name}: an idempotency id is required")
        return inngest.Event(name=self.name, data=self.to_data(), id=id, ts=ts)

    def to_wire(self, *, id: str, ts: int = 0) -> dict[str, Any]:
        """The Event API JSON for this event (for producers that post over HTTP)."""
        if not self.sendable:
            raise ValueError(f"{self.name} is emitted by the engine and cannot be sent")
        if not id or not id.strip():
            raise ValueError(f"{self.name}: an idempotency id is required")
        wire: dict[str, Any] = {"name": self.name, "data": self.to_data(), "id": id}
        if ts:
            wire["ts"] = ts
        return wire

    @classmethod
    def trigger(cls, *, if_exp: str | None = None) -> inngest.TriggerEvent:
        """The function trigger for this event."""
        import inngest

        return inngest.TriggerEvent(event=cls.name, expression=if_exp)

    # -- reading ----------------------------------------------------------------------------

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Validate raw data; raises EventDataError naming the bad field."""
        clean = {k: v for k, v in data.items() if k not in _ENGINE_KEYS}
        try:
            return cls.model_validate(clean)
        except ValidationError as error:
            raise EventDataError(describe_validation_error(cls.name, error)) from error

    @classmethod
    def from_event(cls, event: inngest.Event) -> Self:
        """Parse `ctx.event`; bad data raises `inngest.NonRetriableError` naming the field.

        Retrying cannot fix a malformed payload, so the run fails at once with a clear message.
        """
        import inngest

        if event.name != cls.name and not cls._accepts_name(event.name):
            raise inngest.NonRetriableError(f"expected a {cls.name} event, got {event.name}")
        try:
            return cls.from_data(event.data)
        except EventDataError as error:
            raise inngest.NonRetriableError(str(error)) from error

    @classmethod
    def from_events(cls, events: list[inngest.Event]) -> list[Self]:
        """Parse a batch (`ctx.events`)."""
        return [cls.from_event(event) for event in events]

    @classmethod
    def _accepts_name(cls, name: str) -> bool:
        # Invoked functions receive `inngest/function.invoked` carrying the input as data.
        return name == "inngest/function.invoked"
