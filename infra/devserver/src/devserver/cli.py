"""`devserver` command line (flags mirror `inngest dev`; INNGEST_<FLAG> env equivalents)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from devserver.config import Settings
from devserver.signing import valid_signing_key

log = logging.getLogger("devserver")
app = typer.Typer(add_completion=False, help="Inngest-compatible local dev server.")


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


@app.command()
def main(
    sdk_url: Annotated[
        list[str] | None,
        typer.Option(
            "--sdk-url", "-u", envvar="INNGEST_SDK_URL", help="App serve URL to sync (repeatable)"
        ),
    ] = None,
    no_discovery: Annotated[
        bool,
        typer.Option("--no-discovery", envvar="INNGEST_NO_DISCOVERY", help="Disable autodiscovery"),
    ] = False,
    no_poll: Annotated[
        bool,
        typer.Option(
            "--no-poll", envvar="INNGEST_NO_POLL", help="Do not re-sync apps periodically"
        ),
    ] = False,
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval", envvar="INNGEST_POLL_INTERVAL", help="Seconds between app syncs"
        ),
    ] = 5.0,
    port: Annotated[int, typer.Option("--port", "-p", envvar="INNGEST_PORT")] = 8288,
    host: Annotated[str, typer.Option("--host", envvar="INNGEST_HOST")] = "127.0.0.1",
    retry_interval: Annotated[
        float,
        typer.Option(
            "--retry-interval",
            envvar="INNGEST_RETRY_INTERVAL",
            help="Fixed retry delay in seconds (0 = Inngest's backoff table)",
        ),
    ] = 0.0,
    queue_workers: Annotated[
        int, typer.Option("--queue-workers", envvar="INNGEST_QUEUE_WORKERS")
    ] = 100,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="INNGEST_DATABASE_URL",
            help="SQLite or Postgres URL (default: sqlite .nerve/devserver.db)",
        ),
    ] = None,
    in_memory: Annotated[
        bool,
        typer.Option("--in-memory", envvar="INNGEST_IN_MEMORY", help="Keep nothing after exit"),
    ] = False,
    signing_key: Annotated[
        str | None,
        typer.Option(
            "--signing-key",
            envvar="INNGEST_SIGNING_KEY",
            help="Behave like `inngest start`: signed calls, keys enforced",
        ),
    ] = None,
    event_key: Annotated[
        list[str] | None,
        typer.Option(
            "--event-key", envvar="INNGEST_EVENT_KEY", help="Accepted event key (repeatable)"
        ),
    ] = None,
    no_ui: Annotated[
        bool,
        typer.Option(
            "--no-ui", envvar="INNGEST_NO_UI", help="Serve neither the dashboard (/) nor /mcp"
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", envvar="INNGEST_LOG_LEVEL")] = "warning",
) -> None:
    if signing_key is not None and not valid_signing_key(signing_key):
        raise typer.BadParameter(
            "signing key must be hex (optionally prefixed signkey-<env>-)",
            param_hint="--signing-key",
        )
    event_keys = _split(event_key)
    if signing_key and not event_keys:
        # As `inngest start`: with a signing key, events need a key of their own.
        raise typer.BadParameter(
            "at least one event key is required with --signing-key", param_hint="--event-key"
        )
    if port < 0 or port > 65535:
        raise typer.BadParameter("port must be 0-65535", param_hint="--port")
    if poll_interval <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--poll-interval")
    if retry_interval < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--retry-interval")
    settings = Settings(
        host=host,
        port=port,
        sdk_urls=_split(sdk_url),
        discovery=not no_discovery,
        poll=not no_poll,
        poll_interval=poll_interval,
        retry_interval=retry_interval,
        database_url=database_url,
        in_memory=in_memory,
        signing_key=signing_key or None,
        event_keys=event_keys,
        queue_workers=queue_workers,
        ui=not no_ui,
    )
    logging.basicConfig(level=log_level.upper())
    if event_keys and not signing_key:
        log.warning(
            "--event-key without --signing-key: only the Event API checks a key; the REST API, "
            "/fn/register, /invoke, the dashboard and /mcp stay open (dev mode)"
        )
    from devserver.server import StartupRefused, create_app

    try:
        server = create_app(settings)
    except StartupRefused as exc:
        raise typer.BadParameter(str(exc), param_hint="--host") from None
    uvicorn.run(
        server,
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def run() -> None:
    app()
