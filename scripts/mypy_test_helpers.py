"""Run mypy strict over every tests folder's helpers (conftest.py and its non-test modules).

`uv run mypy` checks the workspace packages; their tests' helpers are checked here, one folder
at a time, because every folder has its own `conftest.py` and mypy refuses two modules of one
name in one run. Exit status: 0 when every folder is clean, else 1 (mypy's output is shown).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_PARTS = {".venv", ".git", "node_modules", "__pycache__"}


def helper_groups() -> list[list[Path]]:
    """Each tests folder's helper modules, grouped by folder, in a stable order."""
    groups: dict[Path, list[Path]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if SKIP_PARTS.intersection(rel.parts) or "tests" not in rel.parts:
            continue
        if path.name.startswith("test_"):
            continue
        groups.setdefault(path.parent, []).append(rel)
    return list(groups.values())


def main() -> int:
    """Check every group; report each failing folder."""
    failed = 0
    for group in helper_groups():
        result = subprocess.run(
            [sys.executable, "-m", "mypy", *map(str, group)], cwd=ROOT, check=False
        )
        failed += result.returncode != 0
    print(f"mypy test helpers: {len(helper_groups())} folders, {failed} with errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
