"""The gates issue 16 set stay in place: CI runs lint and tests, and services' modules stay small.

`.ci/run` runs `make test`; `make test` must run `make lint` before the suites, so a commit that
breaks ruff (complexity, docstrings), formatting or mypy strict cannot land. Modules under
`services/` stay at or under 300 lines: a newcomer finds one function, one gate or one topic per
module, not a closure of hundreds of lines.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_SERVICE_MODULE_LINES = 300


def make_target_prerequisites(target: str) -> list[str]:
    """The prerequisites of one Makefile rule, as written on its `target:` line."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(rf"^{re.escape(target)}:\s*([^#]*)", line)
        if match:
            return match.group(1).split()
    raise AssertionError(f"the Makefile has no `{target}:` rule")


def test_ci_runs_make_test() -> None:
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "exec make test", commands


def test_make_test_runs_lint_first() -> None:
    assert "lint" in make_target_prerequisites("test")


def test_lint_checks_ruff_format_mypy_and_test_helpers() -> None:
    text = (ROOT / "Makefile").read_text()
    rule = text[text.index("\nlint:") :].split("\n\n", 1)[0]
    for command in (
        "ruff check .",
        "ruff format --check .",
        "run mypy\n",
        "scripts/mypy_test_helpers.py",
    ):
        assert command in rule + "\n", f"`make lint` no longer runs `{command.strip()}`"


def test_no_module_in_services_over_300_lines() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "services/*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(tracked) > 50, tracked  # an empty listing would make this test pass vacuously
    too_long = {
        path: count
        for path in tracked
        if (count := len((ROOT / path).read_text().splitlines())) > MAX_SERVICE_MODULE_LINES
    }
    assert too_long == {}, f"split these along their seams: {too_long}"
