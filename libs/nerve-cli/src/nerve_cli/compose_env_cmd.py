"""`nerve compose-env` (`make compose-env`): write the `.env` that `docker compose up` needs.

docker-compose.yml has no usable secret defaults (`${VAR:?...}`): this command writes fresh random
values, each in the form its reader accepts:

- `INNGEST_SIGNING_KEY_HEX`: 32 random bytes as even-length hex, the form `inngest start
  --signing-key` accepts (it rejects anything else: "signing-key must be hex string with even
  number of chars"). The compose file hands the services `signkey-prod-<that hex>`, the SDK's
  spelling of the same key, so the two can never disagree.
- `INNGEST_EVENT_KEY`: even-length hex, passed unchanged to `inngest start --event-key` and to
  the services.
- Passwords and tokens: hex (safe inside URLs: Postgres URIs, Postmark's basic-auth URL);
  `STRIPE_WEBHOOK_SECRET` is `whsec_...` like Stripe's (replace it with your endpoint's secret).

The same `.env` configures the `nerve` CLI on the host: it reads this file from the working
directory, and `NERVE_CLI_DATABASE_URL` names the compose Postgres on its published port (inside
the stack the host is `postgres`, from the host it is 127.0.0.1).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import compose_file

console = Console()
err = Console(stderr=True)

# Prefix of the signing key in the SDK's spelling (the services' INNGEST_SIGNING_KEY).
SDK_SIGNING_KEY_PREFIX = "signkey-prod-"


def generate_env(*, bind_address: str = "127.0.0.1", postgres_port: int = 5432) -> dict[str, str]:
    """Fresh values for every variable the compose file needs, plus the CLI's database URL."""
    postgres_password = secrets.token_hex(24)
    return {
        "POSTGRES_PASSWORD": postgres_password,
        "INNGEST_SIGNING_KEY_HEX": secrets.token_hex(32),
        "INNGEST_EVENT_KEY": secrets.token_hex(16),
        "POSTMARK_INBOUND_USERNAME": "postmark",
        "POSTMARK_INBOUND_PASSWORD": secrets.token_hex(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        "DECISION_TOKEN_SECRET": secrets.token_hex(32),
        "ADMIN_API_TOKEN": secrets.token_hex(32),
        "NERVE_BIND_ADDRESS": bind_address,
        "NERVE_POSTGRES_PORT": str(postgres_port),
        "NERVE_CLI_DATABASE_URL": (
            f"postgresql+asyncpg://postgres:{postgres_password}@127.0.0.1:{postgres_port}/nerve"
        ),
    }


def render(values: dict[str, str]) -> str:
    lines = [
        "# Written by `nerve compose-env` (`make compose-env`): fresh random secrets for",
        "# `docker compose up` and the `nerve` CLI on this machine. Keep this file private",
        "# (.gitignore lists it). Regenerate with `make compose-env FORCE=1`; the Postgres",
        "# password only applies to a new postgres-data volume (`docker compose down -v`).",
        "",
        "# Postgres superuser password (the nerve and inngest databases)",
        f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}",
        "# Inngest signing key as bare even-length hex: `inngest start --signing-key` takes",
        f"# this form; the services get it as {SDK_SIGNING_KEY_PREFIX}<hex> (the SDK's form)",
        f"INNGEST_SIGNING_KEY_HEX={values['INNGEST_SIGNING_KEY_HEX']}",
        "# Inngest event key, even-length hex (the server and the services use it unchanged)",
        f"INNGEST_EVENT_KEY={values['INNGEST_EVENT_KEY']}",
        "# basic auth of Postmark's inbound webhook URL",
        f"POSTMARK_INBOUND_USERNAME={values['POSTMARK_INBOUND_USERNAME']}",
        f"POSTMARK_INBOUND_PASSWORD={values['POSTMARK_INBOUND_PASSWORD']}",
        "# the Stripe endpoint's signing secret: replace with yours (Dashboard > Webhooks)",
        f"STRIPE_WEBHOOK_SECRET={values['STRIPE_WEBHOOK_SECRET']}",
        "# signs reviewer decision links (gateway + notifier + `nerve decide`)",
        f"DECISION_TOKEN_SECRET={values['DECISION_TOKEN_SECRET']}",
        "# bearer token of the gateway's admin API",
        f"ADMIN_API_TOKEN={values['ADMIN_API_TOKEN']}",
        "",
        "# Published ports listen on this address only; 0.0.0.0 exposes them to the network",
        f"NERVE_BIND_ADDRESS={values['NERVE_BIND_ADDRESS']}",
        "# host port of the compose Postgres (change it when 5432 is taken)",
        f"NERVE_POSTGRES_PORT={values['NERVE_POSTGRES_PORT']}",
        "# the system of record as the `nerve` CLI on this machine reaches it",
        f"NERVE_CLI_DATABASE_URL={values['NERVE_CLI_DATABASE_URL']}",
        "",
        "# Optional: unset = the deterministic offline model / notifications recorded locally",
        "# OPENAI_API_KEY=",
        "# SLACK_WEBHOOK_URL=",
        "",
    ]
    return "\n".join(lines)


def compose_env(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (compose reads ./.env).")
    ] = Path(".env"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing file (new secrets).")
    ] = False,
    bind_address: Annotated[
        str,
        typer.Option("--bind-address", help="Address the published ports listen on."),
    ] = "127.0.0.1",
    postgres_port: Annotated[
        int, typer.Option("--postgres-port", min=1, max=65535, help="Host port of Postgres.")
    ] = 5432,
    compose: Annotated[
        Path,
        typer.Option("--compose-file", help="Checked: every ${VAR:?} it needs gets a value."),
    ] = Path("docker-compose.yml"),
) -> None:
    """Write a .env with fresh random secrets for `docker compose up` and the nerve CLI."""
    if output.exists() and not force:
        err.print(
            f"[red]{output} exists; not overwriting it (its secrets may be in use). "
            "Use --force (make compose-env FORCE=1) to write new ones.[/red]"
        )
        raise typer.Exit(1)
    values = generate_env(bind_address=bind_address, postgres_port=postgres_port)
    if compose.exists():
        missing = sorted(
            set(compose_file.required_variables(compose_file.load(compose))) - set(values)
        )
        if missing:
            err.print(
                f"[red]{compose} needs {', '.join(missing)}, "
                "which this command does not write[/red]"
            )
            raise typer.Exit(1)
    output.write_text(render(values))
    output.chmod(0o600)
    console.print(f"wrote {output} (fresh secrets; mode 600). Next: docker compose up --build")
