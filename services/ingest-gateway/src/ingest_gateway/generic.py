"""Generic JSON producers: a per-source HMAC-SHA256 secret and a declared mapping to a catalog
event. Adding a producer is configuration (the `GENERIC_SOURCES` setting), not code.

Example (JSON in the `GENERIC_SOURCES` environment variable)::

    {"helpdesk": {
        "secret": "...",
        "event": "ticket/resolved",
        "id_path": "ticket.id",
        "fields": {"ticket_id": "ticket.id", "customer_id": "ticket.customer"},
        "constants": {"resolved_by": "helpdesk"}
    }}

The producer signs the raw body: header `X-Nerve-Signature: sha256=<hex hmac-sha256(secret,
body)>` (the bare hex digest is accepted too). The event id is `{source}-{value at id_path}`, so a
re-delivery is recognised and published once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from shared_events import CATALOG, EventModel

from .http_body import GatewayHTTPError

# Longer ids are stored as fixed-length keys (see bounds.py); beyond this they are refused.
MAX_EXTERNAL_ID = 998

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")


class GenericSource(BaseModel):
    """One producer's declaration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretStr = Field(description="HMAC-SHA256 key shared with the producer")
    event: str = Field(description="catalog event name this source maps to")
    id_path: str = Field(min_length=1, description="dotted path to the delivery's unique id")
    fields: dict[str, str] = Field(
        default_factory=dict, description="event field -> dotted path in the payload"
    )
    constants: dict[str, Any] = Field(
        default_factory=dict, description="event field -> fixed value"
    )
    signature_header: str = Field(default="X-Nerve-Signature")

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str) -> str:
        model = CATALOG.get(value)
        if model is None:
            raise ValueError(f"unknown catalog event {value!r}")
        if not model.sendable:
            raise ValueError(f"{value} is emitted by the engine and cannot be mapped")
        return value

    @field_validator("secret")
    @classmethod
    def _non_empty_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return value

    @property
    def model(self) -> type[EventModel]:
        return CATALOG[self.event]


def validate_sources(sources: dict[str, GenericSource]) -> dict[str, GenericSource]:
    for name, source in sources.items():
        if not SOURCE_NAME.match(name):
            raise ValueError(f"generic source name {name!r} must match {SOURCE_NAME.pattern}")
        unknown = (set(source.fields) | set(source.constants)) - set(source.model.model_fields)
        if unknown:
            raise ValueError(
                f"generic source {name!r}: {source.event} has no field(s) {sorted(unknown)}"
            )
    return sources


def sign(secret: str, body: bytes) -> str:
    """The header value a producer sends: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(source: GenericSource, body: bytes, header: str | None) -> None:
    """401 unless `header` is the HMAC-SHA256 of `body` (constant-time comparison)."""
    if not header:
        raise GatewayHTTPError(401, f"missing {source.signature_header} header")
    given = header.strip()
    if given.startswith("sha256="):
        given = given[len("sha256=") :]
    expected = hmac.new(source.secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise GatewayHTTPError(401, f"invalid {source.signature_header} signature")


_MISSING = object()


def lookup(payload: Any, path: str) -> Any:
    """Follow a dotted path through objects (and list indexes); `_MISSING` when absent."""
    current = payload
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def map_payload(
    name: str, source: GenericSource, payload: dict[str, Any]
) -> tuple[str, EventModel]:
    """(external id, typed event); 422 naming the payload path or event field that is wrong."""
    external = lookup(payload, source.id_path)
    if external is _MISSING or external is None or isinstance(external, dict | list):
        raise GatewayHTTPError(
            422, f"invalid {name} payload: {source.id_path}: a string or number id is required"
        )
    external_id = str(external).strip()
    if not external_id or len(external_id) > MAX_EXTERNAL_ID:
        raise GatewayHTTPError(
            422,
            f"invalid {name} payload: {source.id_path}: the id must be 1 to {MAX_EXTERNAL_ID} "
            "characters",
        )
    data: dict[str, Any] = dict(source.constants)
    for field, path in source.fields.items():
        value = lookup(payload, path)
        if value is not _MISSING:
            data[field] = value
    try:
        event = source.model.model_validate(data)
    except ValidationError as error:
        # Name the producer's path where the field came from one, so they can fix their payload.
        paths = {field: path for field, path in source.fields.items()}
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "<root>"
            where = paths.get(field, field)
            problems.append(f"{where} (-> {source.event} {field}): {item['msg']}")
        raise GatewayHTTPError(422, f"invalid {name} payload: " + "; ".join(problems)) from None
    return external_id, event


__all__ = [
    "GenericSource",
    "lookup",
    "map_payload",
    "sign",
    "validate_sources",
    "verify",
]
