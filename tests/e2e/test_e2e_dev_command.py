"""`make dev` = `uv run nerve dev`: one command brings the platform up (migrations, seed, the
devserver, four services, readiness), prints the banner, and one Ctrl-C stops everything.

These start their own `nerve dev` (always the embedded devserver), whatever NERVE_E2E_ENGINE
says, so they run with every engine choice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from engine_client import free_port_block
from nerve_cli.stack import SERVICES


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def test_nerve_dev_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    engine_port = free_port_block(1)
    base = free_port_block(4)  # the gateway and the three workers
    ports = [base + i for i in range(len(SERVICES))]
    if any(_listening(p) for p in ports):
        pytest.skip(f"ports {ports} are taken")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPENAI_API_KEY")}
    env["COLUMNS"] = "200"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nerve_cli",
            "dev",
            "--state-dir",
            str(tmp_path / ".nerve"),
            "--engine-port",
            str(engine_port),
            "--base-port",
            str(base),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 150
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        assert "Nerve is running" in text, text
        assert f"http://127.0.0.1:{engine_port}" in text and "nerve email" in text
        # Everything answers: the engine knows all four apps, each service is ready.
        apps = httpx.get(f"http://127.0.0.1:{engine_port}/v2/apps", timeout=5).json()["data"]
        assert sorted(app["id"] for app in apps) == sorted(spec.name for spec in SERVICES)
        for port in ports:
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        # Seeded database in the state dir.
        assert (tmp_path / ".nerve" / "nerve.db").exists()
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, "".join(output)
    time.sleep(0.5)
    still_up = [p for p in [engine_port, *ports] if _listening(p)]
    assert still_up == [], f"still listening after Ctrl-C: {still_up}"


@pytest.mark.parametrize(
    ("after", "sig"),
    [
        ("engine: starting", signal.SIGINT),
        ("migrations:", signal.SIGTERM),
        ("service: starting", signal.SIGTERM),
    ],
)
def test_nerve_dev_interrupted_while_starting_leaves_nothing_behind(
    tmp_path: Path, after: str, sig: signal.Signals
) -> None:
    engine_port = free_port_block(1)
    base = free_port_block(4)  # the gateway and the three workers
    ports = [base + i for i in range(len(SERVICES))]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPENAI_API_KEY")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nerve_cli",
            "dev",
            "--state-dir",
            str(tmp_path / ".nerve"),
            "--engine-port",
            str(engine_port),
            "--base-port",
            str(base),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if after in line:
            break
    process.send_signal(sig)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, "".join(lines)
    time.sleep(0.5)
    assert [p for p in [engine_port, *ports] if _listening(p)] == []
    # No child of ours survives: every managed process ran in a group that was killed.
    search = subprocess.run(["pgrep", "-f", "--", f"--port {base}"], capture_output=True, text=True)
    assert search.returncode == 1, f"survivors: {search.stdout} {search.stderr}"  # 1 = none
