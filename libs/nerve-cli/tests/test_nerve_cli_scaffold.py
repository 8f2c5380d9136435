"""`nerve new-service`: the generated service is complete, typed and its own tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nerve_cli.main import app
from nerve_cli.scaffold import sample_data
from shared_events.catalog import CATALOG
from typer.testing import CliRunner

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]


def test_scaffold_generates_a_service_whose_tests_pass(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["new-service", "loyalty-worker", "--dest", str(tmp_path), "--event", "ticket/resolved"],
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "loyalty-worker"
    package = root / "src" / "loyalty_worker"
    assert {p.name for p in package.iterdir()} >= {
        "__init__.py",
        "app.py",
        "functions.py",
        "handlers.py",
        "settings.py",
        "__main__.py",
    }
    # The boundary: only functions.py imports inngest.
    for module in package.glob("*.py"):
        imports_inngest = "import inngest" in module.read_text()
        assert imports_inngest == (module.name == "functions.py"), module.name
    assert "trigger=TicketResolved.trigger()" in (package / "functions.py").read_text()
    # Generated code is as clean as hand-written code (ruff with the workspace's settings).
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(REPO / "pyproject.toml"),
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


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
