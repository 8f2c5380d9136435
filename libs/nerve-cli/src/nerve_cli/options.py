"""Shared option parsing: engine connection, time windows, typed event fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from engine_client import EngineClient, parse_duration

DEFAULT_ENGINE_URL = "http://127.0.0.1:8288"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"

# Where the CLI finds the system of record, first match wins. The `.env` that `make compose-env`
# writes (read by `nerve` from the working directory, like docker compose does) names the compose
# Postgres as this machine reaches it (127.0.0.1 and the published port) in NERVE_CLI_DATABASE_URL;
# the stack's own DATABASE_URL uses the in-network host `postgres`, and `nerve dev` reads
# DATABASE_URL, so the CLI variable is a separate one.
DATABASE_URL_ENVVARS = ["NERVE_CLI_DATABASE_URL", "DATABASE_URL"]
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.nerve/nerve.db"

EngineUrl = Annotated[
    str,
    typer.Option(
        "--engine-url",
        envvar="INNGEST_BASE_URL",
        help="Engine base URL (devserver or real Inngest).",
        show_default=True,
    ),
]
EventKey = Annotated[
    str,
    typer.Option("--event-key", envvar="INNGEST_EVENT_KEY", help="Event API key."),
]
SigningKey = Annotated[
    str | None,
    typer.Option(
        "--signing-key",
        # INNGEST_SIGNING_KEY_HEX: the compose `.env`'s bare-hex form (the credential is the
        # same hash either way: the `signkey-<env>-` prefix is not part of the key).
        envvar=["INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_HEX"],
        help="Signing key for the REST API (self-hosted / cloud).",
        show_default=False,
    ),
]
DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar=DATABASE_URL_ENVVARS,
        help="System of record (env NERVE_CLI_DATABASE_URL, else DATABASE_URL).",
    ),
]


def engine_client(engine_url: str, event_key: str, signing_key: str | None) -> EngineClient:
    return EngineClient(engine_url, event_key=event_key or "dev", signing_key=signing_key or None)


def parse_moment(value: str, *, now: datetime | None = None) -> datetime:
    """`30m` / `2h` / `1d` / `1h30m` (that long ago: the engine's duration syntax), `now`, or an
    ISO-8601 timestamp (UTC if naive)."""
    now = now or datetime.now(UTC)
    text = value.strip()
    if text == "now":
        return now
    try:
        return now - parse_duration(re.sub(r"\s+", "", text))  # `30 m` reads as `30m`
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a duration like 30m / 2h / 1d nor an ISO-8601 timestamp"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_fields(fields: list[str]) -> dict[str, Any]:
    """`key=value` pairs. Scalars stay strings: the catalog model converts them to its field
    types (pydantic's lax mode turns "1999" into an int, "true" into a bool, ISO text into a
    datetime), so `ticket_id=123` stays the string a str field needs. `null`, JSON lists and
    objects are decoded. Dotted keys build nested objects (`a.b=1`)."""
    data: dict[str, Any] = {}
    for item in fields:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"field {item!r} must look like key=value")
        value: Any = raw
        if raw == "null" or raw[:1] in ("[", "{"):
            try:
                value = json.loads(raw)
            except ValueError:
                raise typer.BadParameter(f"field {key!r}: {raw!r} is not valid JSON") from None
        target = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise typer.BadParameter(f"field {key!r} conflicts with another field")
        target[parts[-1]] = value
    return data
