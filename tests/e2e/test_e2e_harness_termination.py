"""A test run that is terminated (SIGTERM from a `timeout` wrapper, a closed terminal) or
interrupted (Ctrl-C) stops every process its harness started: nothing keeps running afterwards.

The run under test is a small pytest session in a subprocess with an e2e-like session fixture:
a `nerve_cli.stack.Stack` of two services (each spawning a grandchild) on held sockets, and the
same termination hook as tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

APP = """
import subprocess

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ok(request):
    return JSONResponse({})


def create_app():
    subprocess.Popen(["sleep", "600"])  # a grandchild: only its process group reaches it
    return Starlette(routes=[Route("/readyz", ok), Route("/api/inngest", ok, methods=["PUT"])])
"""

CONFTEST = """
import os
from pathlib import Path

import pytest
from engine_client import free_port
from nerve_cli.stack import (
    ServiceSpec, Stack, StackConfig, raise_keyboard_interrupt_on_termination,
)


def pytest_configure(config):
    raise_keyboard_interrupt_on_termination()


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    here = Path(__file__).parent
    services = (ServiceSpec("tiny-a", "tinysvc", 0), ServiceSpec("tiny-b", "tinysvc", 0))
    config = StackConfig(
        database_url="sqlite+aiosqlite:///unused.db",
        state_dir=tmp_path_factory.mktemp("state"),
        external_engine_url="http://127.0.0.1:9",
        services=services,
        ports={spec.name: free_port() for spec in services},
        extra_env={"PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")])},
        hold_service_sockets=True,
    )
    stack = Stack(config)
    try:
        stack.start(migrate=False)
        yield stack
    finally:
        stack.stop()
"""

TEST = """
import time
from pathlib import Path


def test_runs_until_terminated(platform):
    (Path(__file__).parent / "started").write_text("yes")
    time.sleep(600)
"""


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (children inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_terminated_test_run_leaves_no_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the run's processes through /proc (Linux)")
    (tmp_path / "tinysvc").mkdir()
    (tmp_path / "tinysvc" / "__init__.py").write_text("")
    (tmp_path / "tinysvc" / "app.py").write_text(APP)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_tiny.py").write_text(TEST)
    marker = f"nerve-termination-{uuid.uuid4().hex}"
    env = {**os.environ, "NERVE_TERMINATION_MARKER": marker}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", "test_tiny.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "the tiny stack did not start"
            time.sleep(0.2)
        started = _processes_with(marker)
        # pytest, two services and their two grandchildren.
        assert len(started) >= 5, started
        run.send_signal(sig)
        output = run.communicate(timeout=60)[0]
        assert run.returncode == 2, output  # pytest's "interrupted"
        assert "KeyboardInterrupt" in output, output
        assert _processes_with(marker) == [], output
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)
