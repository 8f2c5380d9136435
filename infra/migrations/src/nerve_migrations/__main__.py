"""`python -m nerve_migrations upgrade|downgrade|seed|current` on DATABASE_URL (or --url)."""

from __future__ import annotations

import os

import typer
from service_kit.db import DEFAULT_DATABASE_URL, DatabaseUnavailable, normalize_url

from . import current, downgrade, migrate, seed

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

UrlOption = typer.Option(
    None, "--url", help="database URL (default: $DATABASE_URL, else the local SQLite file)"
)


def _url(url: str | None) -> str:
    chosen = url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        normalize_url(chosen)
    except Exception as error:
        typer.echo(f"error: invalid DATABASE_URL: {error}", err=True)
        raise typer.Exit(2) from None
    return chosen


def _safe(url: str) -> str:
    return normalize_url(url).render_as_string(hide_password=True)


@cli.command("upgrade")
def upgrade_command(
    url: str | None = UrlOption,
    wait: float = typer.Option(30.0, help="seconds to wait for the database to answer"),
    no_seed: bool = typer.Option(False, "--no-seed", help="skip the seed data"),
) -> None:
    """Wait for the database, `alembic upgrade head`, then insert missing seed data."""
    target = _url(url)
    try:
        inserted = migrate(target, wait_timeout=wait, with_seed=not no_seed)
    except DatabaseUnavailable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{_safe(target)}: at revision {current(target)}; seeded {inserted}")


@cli.command("downgrade")
def downgrade_command(
    revision: str = typer.Argument("base", help="target revision"),
    url: str | None = UrlOption,
) -> None:
    """`alembic downgrade <revision>` (default: base, i.e. drop every table)."""
    target = _url(url)
    downgrade(target, revision)
    typer.echo(f"{_safe(target)}: at revision {current(target)}")


@cli.command("seed")
def seed_command(url: str | None = UrlOption) -> None:
    """Insert the missing seed rows (idempotent)."""
    target = _url(url)
    typer.echo(f"{_safe(target)}: seeded {seed(target)}")


@cli.command("current")
def current_command(url: str | None = UrlOption) -> None:
    """Print the current revision."""
    typer.echo(current(_url(url)) or "<empty>")


def main() -> None:
    cli(prog_name="python -m nerve_migrations")


if __name__ == "__main__":
    main()
