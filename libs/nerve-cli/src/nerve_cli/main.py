"""Entry point of the `nerve` command (subcommands are added by their modules)."""

import typer

app = typer.Typer(help="Nerve: run the platform and drive its engine from the terminal.")


@app.callback()
def main() -> None:
    """Nerve's command-line interface."""
