"""The supervisor's process handling: groups, stop, kill, readiness errors, dev credentials."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from engine_client import free_port
from nerve_cli.dev_cmd import banner, parse_extra_service, port_in_use
from nerve_cli.stack import (
    DEV_DEFAULTS,
    ManagedProcess,
    ServiceSpec,
    Stack,
    StackConfig,
    StackError,
    dotenv_keys,
)

SPAWNER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def _spawner(tmp_path: Path) -> tuple[ManagedProcess, int]:
    process = ManagedProcess(
        "spawner", [sys.executable, "-c", SPAWNER], dict(os.environ), tmp_path / "spawner.log"
    )
    process.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = process.log_path.read_text().strip()
        if text:
            return process, int(text.splitlines()[0])
        time.sleep(0.05)
    raise AssertionError("spawner did not start its child")


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_stopping_a_process_also_stops_what_it_spawned(tmp_path: Path, how: str) -> None:
    process, grandchild = _spawner(tmp_path)
    assert _alive(grandchild)
    getattr(process, how)()
    assert not process.alive
    assert process.process is not None
    # `stop` is graceful: SIGTERM ends the process (not the SIGKILL after the grace period).
    expected = signal.SIGTERM if how == "stop" else signal.SIGKILL
    assert process.process.returncode == -expected
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "grandchild orphaned"


def test_a_service_that_dies_during_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    config = StackConfig(
        database_url="sqlite+aiosqlite:///:memory:",
        state_dir=tmp_path,
        services=(ServiceSpec("broken", "no_such_package_xyz", 0),),
        ports={"broken": 1},
    )
    stack = Stack(config)
    stack.launch_service("broken")
    with pytest.raises(StackError, match="broken exited"):
        stack.wait_service("broken", timeout=30)
    stack.stop()


def test_dev_credentials_never_override_the_environment_or_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("# local\nexport STRIPE_WEBHOOK_SECRET=whsec_mine\n")
    assert dotenv_keys(tmp_path / ".env") == {"STRIPE_WEBHOOK_SECRET"}
    config = StackConfig(
        database_url="sqlite+aiosqlite:///x.db",
        state_dir=tmp_path,
        cwd=tmp_path,
        unset_env=("OPENAI_API_KEY",),
    )
    monkeypatch.setenv("ADMIN_API_TOKEN", "from-the-shell-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-shell")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("POSTMARK_INBOUND_PASSWORD", raising=False)
    env = Stack(config).base_env()
    assert "OPENAI_API_KEY" not in env
    assert env["DATABASE_URL"] == "sqlite+aiosqlite:///x.db"
    assert "STRIPE_WEBHOOK_SECRET" not in env  # .env wins (the service reads it itself)
    assert env["ADMIN_API_TOKEN"] == "from-the-shell-123"
    assert env["POSTMARK_INBOUND_PASSWORD"] == DEV_DEFAULTS["POSTMARK_INBOUND_PASSWORD"]
    assert env["INNGEST_DEV"] == "1" and env["INNGEST_BASE_URL"] == "http://127.0.0.1:8288"


def test_banner_names_every_url_and_a_sample_command(tmp_path: Path) -> None:
    stack = Stack(StackConfig(database_url="sqlite+aiosqlite:///x.db", state_dir=tmp_path))
    text = banner(stack)
    for url in (
        "http://127.0.0.1:8288",
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8001/readyz",
        "http://127.0.0.1:8002/readyz",
        "http://127.0.0.1:8003/readyz",
    ):
        assert url in text
    assert "uv run nerve email --customer-id cust_001" in text
    # The refund example is above the auto-approve limit (so a reviewer decides it) and the
    # banner says how to decide it.
    assert 'nerve email --customer-id cust_002 --body "Please refund ord_1004"' in text
    assert "http://127.0.0.1:8288/notifications" in text
    assert "uv run nerve pending" in text and "uv run nerve decide approve" in text


def test_nerve_dev_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    from nerve_cli.main import app
    from typer.testing import CliRunner

    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        base = free_port()
        result = CliRunner().invoke(
            app,
            [
                "dev",
                "--state-dir",
                str(tmp_path / ".nerve"),
                "--engine-port",
                str(port),
                "--base-port",
                str(base),
            ],
            env={"COLUMNS": "300"},
        )
    assert result.exit_code == 1, result.output
    assert f"port {port} (devserver)" in result.output
    assert "--engine-port" in result.output
    assert "Nerve is running" not in result.output
    # Nothing was started: no migrations ran, no logs were written.
    assert not (tmp_path / ".nerve" / "nerve.db").exists()
    assert not (tmp_path / ".nerve" / "logs").exists()
    assert not port_in_use("127.0.0.1", port)


def test_extra_services_parse_and_refuse_garbage() -> None:
    spec, port = parse_extra_service("loyalty-worker=loyalty_worker:8010")
    assert (spec.name, spec.factory, port) == (
        "loyalty-worker",
        "loyalty_worker.app:create_app",
        8010,
    )
    import typer

    with pytest.raises(typer.BadParameter):
        parse_extra_service("loyalty-worker")


def test_the_cli_reads_dotenv_but_the_shell_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_engine
) -> None:
    from nerve_cli.main import app
    from typer.testing import CliRunner

    (tmp_path / ".env").write_text(
        f'INNGEST_BASE_URL="{fake_engine.base_url}"\nINNGEST_EVENT_KEY=from-dotenv\n'
    )
    monkeypatch.chdir(tmp_path)
    # setenv first so monkeypatch records the original state: the in-process CLI copies .env
    # into os.environ, and without this the fake engine's URL would leak into later tests.
    monkeypatch.setenv("INNGEST_BASE_URL", "unset-by-this-test")
    monkeypatch.delenv("INNGEST_BASE_URL")
    monkeypatch.setenv("INNGEST_EVENT_KEY", "from-shell")
    result = CliRunner().invoke(
        app,
        [
            "send",
            "ticket/resolved",
            "-f",
            "ticket_id=t",
            "-f",
            "customer_id=c",
            "-f",
            "resolved_by=r",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(fake_engine.events) == 1  # .env pointed the CLI at the fake engine
    assert fake_engine.event_keys == ["from-shell"]
