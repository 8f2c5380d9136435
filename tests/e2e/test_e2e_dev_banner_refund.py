"""The `nerve dev` banner's refund example, followed as a new user would: the refund waits for a
reviewer, `nerve email --wait` says so and how to decide it, a second send of the same email is
reported as a duplicate, and the approve link on the dashboard's Notifications page (which
`nerve dev` connects to the system of record) issues the refund."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from engine_client import free_port_block


def _banner_command(banner: str, needle: str) -> list[str]:
    """The banner line holding `needle`, as nerve arguments (panel borders stripped)."""
    for line in banner.splitlines():
        text = line.strip().strip("│").strip()
        if needle in text:
            return shlex.split(text.split("uv run nerve", 1)[1])
    raise AssertionError(f"no {needle!r} in the banner:\n{banner}")


def _nerve(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nerve_cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_banner_refund_example_waits_for_a_reviewer_and_its_link_decides_it(
    tmp_path: Path,
) -> None:
    engine_port = free_port_block(1)
    base = free_port_block(4)  # the gateway and the three workers
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPENAI_API_KEY")}
    env["COLUMNS"] = "250"
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
        assert process.stdout is not None
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        banner = "".join(output)
        assert "Nerve is running" in banner, banner

        refund = _banner_command(banner, "nerve email --customer-id cust_002")
        waited = _nerve(
            [*refund, "--wait", "--timeout", "120", "--idempotency-key", "r1"], tmp_path, env
        )
        assert waited.returncode == 3, waited.stdout + waited.stderr
        assert "waiting for a reviewer" in waited.stdout
        assert "await-refund-approval-ord_1004" in waited.stdout
        request_id = re.search(r"nerve decide approve (rfr_\w+)", waited.stdout)
        assert request_id, waited.stdout
        assert f"127.0.0.1:{engine_port}/notifications" in waited.stdout

        again = _nerve([*refund, "--idempotency-key", "r1"], tmp_path, env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "duplicate" in again.stdout and "already received" in again.stdout

        # The dashboard's Notifications page reads the system of record: the approval request
        # with its approve link is there.
        page = ""
        link = None
        deadline = time.monotonic() + 60
        while link is None and time.monotonic() < deadline:
            page = httpx.get(f"http://127.0.0.1:{engine_port}/notifications", timeout=10).text
            assert "notifications-not-configured" not in page
            found = re.search(
                rf"(http://127\.0\.0\.1:{base}/decisions/[A-Za-z0-9._\-]+)\?decision=approve",
                page,
            )
            link = found.group(1) if found else None
            time.sleep(0.5)
        assert link, page
        decided = httpx.post(link, json={"decision": "approve"}, timeout=10)
        assert decided.status_code == 200, decided.text

        status = None
        deadline = time.monotonic() + 90
        while status != "issued" and time.monotonic() < deadline:
            with sqlite3.connect(tmp_path / ".nerve" / "nerve.db") as conn:
                row = conn.execute(
                    "SELECT status FROM refund_requests WHERE id = ?", (request_id.group(1),)
                ).fetchone()
            status = row[0] if row else None
            time.sleep(0.5)
        assert status == "issued"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, "".join(output)
