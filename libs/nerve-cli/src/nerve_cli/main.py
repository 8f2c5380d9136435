"""Entry point of the `nerve` command: run the platform and drive its engine from the terminal.

Every engine command talks to the engine's public REST API (`--engine-url`, env
`INNGEST_BASE_URL`, default the devserver on :8288), so it works the same against the embedded
devserver and a real Inngest server (add `INNGEST_SIGNING_KEY` for `inngest start`).

`nerve` reads `.env` from the working directory, the file docker compose reads too: after
`make compose-env` and `docker compose up`, the commands reach the compose stack with no flags
(event key, signing key as INNGEST_SIGNING_KEY_HEX, Postmark and decision secrets, and the
system of record as NERVE_CLI_DATABASE_URL).
"""

import os
from pathlib import Path

import typer

from . import (
    catalog_cmd,
    compose_env_cmd,
    decide_cmd,
    dev_cmd,
    email_cmd,
    events_cmd,
    runs_cmd,
)
from .processes import dotenv_values

app = typer.Typer(
    help="Nerve: run the platform and drive its engine from the terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Nerve's command-line interface (reads `.env` like the services do; the shell wins)."""
    for key, value in dotenv_values(Path.cwd() / ".env").items():
        os.environ.setdefault(key, value)


app.command("catalog")(catalog_cmd.catalog)
app.command("send")(events_cmd.send)
app.command("email")(email_cmd.email)
app.add_typer(runs_cmd.runs_app, name="runs")
app.command("rerun")(runs_cmd.rerun)
app.command("cancel")(runs_cmd.cancel)
app.command("invoke")(runs_cmd.invoke)
app.command("decide")(decide_cmd.decide)
app.command("pending")(decide_cmd.pending)

app.command("dev")(dev_cmd.dev)
app.command("new-service")(dev_cmd.new_service)
app.command("compose-env")(compose_env_cmd.compose_env)
