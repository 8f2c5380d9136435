"""`nerve new-service`: the generated service is complete, typed and its own tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nerve_cli.main import app
from nerve_cli.scaffold import sample_data
from service_kit.boundary import boundary_offenders, inngest_imports
from shared_events.catalog import CATALOG
from typer.testing import CliRunner

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "pyproject.toml"


def test_scaffold_generates_a_service_whose_tests_pass(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["new-service", "loyalty-worker", "--dest", str(tmp_path), "--event", "ticket/resolved"],
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "loyalty-worker"
    package = root / "src" / "loyalty_worker"
    # The layout of the real services: app.py, a functions package (one module per function,
    # named after its id), domain code, and tests mirroring them.
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "pyproject.toml",
        "src/loyalty_worker/__init__.py",
        "src/loyalty_worker/__main__.py",
        "src/loyalty_worker/app.py",
        "src/loyalty_worker/deps.py",
        "src/loyalty_worker/domain.py",
        "src/loyalty_worker/functions/__init__.py",
        "src/loyalty_worker/functions/on_ticket_resolved.py",
        "src/loyalty_worker/py.typed",
        "src/loyalty_worker/settings.py",
        "tests/conftest.py",
        "tests/test_loyalty_worker_app.py",
        "tests/test_loyalty_worker_boundary.py",
        "tests/test_loyalty_worker_domain.py",
        "tests/test_loyalty_worker_functions.py",
    ]
    function = (package / "functions" / "on_ticket_resolved.py").read_text()
    assert 'FN_ID = "on-ticket-resolved"' in function
    assert "trigger=TicketResolved.trigger()" in function
    # The boundary rule every service is held to (tests/repo/test_inngest_boundary.py): only
    # the functions package and app.py import inngest, and the functions do.
    assert boundary_offenders(package) == []
    functions = sorted((package / "functions").glob("*.py"))
    assert all(inngest_imports(module.read_text()) for module in functions)
    assert inngest_imports((package / "domain.py").read_text()) == []
    # Generated code is as clean as hand-written code: ruff and mypy strict with the
    # workspace's settings.
    for ruff in (["check"], ["format", "--check"]):
        lint = run([sys.executable, "-m", "ruff", *ruff, "--config", str(CONFIG), str(root)])
        assert lint.returncode == 0, lint.stdout + lint.stderr
    types = run(
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "-p", "loyalty_worker"],
        env={**os.environ, "MYPYPATH": str(root / "src")},
        timeout=300,
    )
    assert types.returncode == 0, types.stdout + types.stderr
    tests = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        env={**os.environ, "PYTHONPATH": str(root / "src")},
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout


def run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_scaffold_refuses_bad_names_events_and_existing_folders(tmp_path: Path) -> None:
    for args in (
        ["new-service", "Bad_Name"],
        ["new-service", "ok-name", "--event", "nope/unknown"],
        ["new-service", "ok-name", "--event", "inngest/function.failed"],
    ):
        result = runner.invoke(app, [*args, "--dest", str(tmp_path)])
        assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").mkdir()
    result = runner.invoke(app, ["new-service", "taken", "--dest", str(tmp_path)])
    assert result.exit_code == 2 and "already" in result.output


def test_sample_data_is_valid_for_every_sendable_event() -> None:
    for name, model in CATALOG.items():
        if model.sendable:
            assert model.from_data(sample_data(model)).name == name
