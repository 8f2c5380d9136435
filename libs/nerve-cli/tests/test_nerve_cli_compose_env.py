"""`nerve compose-env` writes the compose `.env`; the CLI then reaches the stack with no flags."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest
from engine_client import hashed_signing_key
from nerve_cli import compose_file
from nerve_cli.compose_env_cmd import SDK_SIGNING_KEY_PREFIX
from nerve_cli.main import app
from nerve_cli.processes import dotenv_values
from service_kit.published_secrets import weakness
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
runner = CliRunner()
SECRETS = (
    "POSTGRES_PASSWORD",
    "INNGEST_SIGNING_KEY_HEX",
    "INNGEST_EVENT_KEY",
    "POSTMARK_INBOUND_PASSWORD",
    "STRIPE_WEBHOOK_SECRET",
    "DECISION_TOKEN_SECRET",
    "ADMIN_API_TOKEN",
)


def write_env(directory: Path, *args: str) -> tuple[int, str, dict[str, str]]:
    target = directory / ".env"
    result = runner.invoke(
        app, ["compose-env", "--output", str(target), "--compose-file", str(COMPOSE), *args]
    )
    return result.exit_code, result.output, dotenv_values(target)


def test_writes_fresh_secrets_in_the_forms_their_readers_accept(tmp_path: Path) -> None:
    code, out, values = write_env(tmp_path)
    assert code == 0, out
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    # `inngest start` takes the signing key and event key as bare even-length hex.
    assert re.fullmatch(r"(?:[0-9a-f]{2}){32}", values["INNGEST_SIGNING_KEY_HEX"])
    assert re.fullmatch(r"(?:[0-9a-f]{2}){16}", values["INNGEST_EVENT_KEY"])
    assert values["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    for name in SECRETS:
        assert weakness(values[name]) is None, f"production would refuse {name}"
    # Every ${VAR:?} of the compose file is satisfied by what was written.
    document = compose_file.load(COMPOSE)
    compose_file.interpolate(document, values)
    services = compose_file.interpolate(document, values)["services"]
    sdk_key = services["notifier"]["environment"]["INNGEST_SIGNING_KEY"]
    assert sdk_key == SDK_SIGNING_KEY_PREFIX + values["INNGEST_SIGNING_KEY_HEX"]
    # The CLI's database URL is the compose Postgres as the host reaches it.
    password = values["POSTGRES_PASSWORD"]
    assert values["NERVE_CLI_DATABASE_URL"] == (
        f"postgresql+asyncpg://postgres:{password}@127.0.0.1:5432/nerve"
    )


def test_each_run_writes_new_secrets_and_never_overwrites_without_force(tmp_path: Path) -> None:
    code, _out, first = write_env(tmp_path)
    assert code == 0
    code, out, unchanged = write_env(tmp_path)
    assert code == 1 and "--force" in out
    assert unchanged == first
    code, out, second = write_env(tmp_path, "--force", "--postgres-port", "55432")
    assert code == 0, out
    for name in SECRETS:
        assert second[name] != first[name], name
    assert second["NERVE_POSTGRES_PORT"] == "55432"
    assert "@127.0.0.1:55432/nerve" in second["NERVE_CLI_DATABASE_URL"]


def test_the_cli_uses_the_compose_env_keys_with_no_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_engine
) -> None:
    code, _out, values = write_env(tmp_path)
    assert code == 0
    with (tmp_path / ".env").open("a") as env:
        env.write(f"INNGEST_BASE_URL={fake_engine.base_url}\n")
    for name in ("INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_HEX", "INNGEST_EVENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("INNGEST_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        [
            "send",
            "ticket/resolved",
            "-f",
            "ticket_id=1",
            "-f",
            "customer_id=c",
            "-f",
            "resolved_by=x",
        ],
    )
    assert result.exit_code == 0, result.output
    assert fake_engine.event_keys == [values["INNGEST_EVENT_KEY"]]
    runner.invoke(app, ["runs", "list"])
    expected = f"Bearer {hashed_signing_key(values['INNGEST_SIGNING_KEY_HEX'])}"
    assert expected in fake_engine.auth_headers


def test_the_cli_reads_the_system_of_record_from_nerve_cli_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "record.db"
    with sqlite3.connect(database) as db:
        db.execute(
            "CREATE TABLE refund_requests (id TEXT, customer_id TEXT, amount_cents INT, "
            "currency TEXT, status TEXT, created_at TEXT)"
        )
        db.execute(
            "CREATE TABLE escalations (id TEXT, customer_id TEXT, status TEXT, created_at TEXT)"
        )
        db.execute(
            "INSERT INTO refund_requests VALUES "
            "('rr_from_cli_url', 'cust_002', 1999, 'usd', 'awaiting_approval', '2026-01-01')"
        )
    (tmp_path / ".env").write_text(
        f"NERVE_CLI_DATABASE_URL=sqlite+aiosqlite:///{database}\n"
        # The stack's own URL (host `postgres`) is not what the host-side CLI may use.
        "DATABASE_URL=postgresql+asyncpg://postgres:x@postgres:5432/nerve\n"
    )
    for name in ("NERVE_CLI_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["pending"])
    assert result.exit_code == 0, result.output
    assert "rr_from_cli_url" in result.output and "1 pending" in result.output
