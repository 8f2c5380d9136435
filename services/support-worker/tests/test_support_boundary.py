"""The architectural invariant: domain code never imports inngest; only functions.py does."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "support_worker"
ALLOWED = {"functions.py"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_functions_module_imports_inngest() -> None:
    offenders = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert any(path.parent.name == "agent" for path in modules)
    for path in modules:
        if path.name in ALLOWED and path.parent == PACKAGE:
            continue
        inngest_imports = {
            name
            for name in imported_modules(path)
            if name == "inngest" or name.startswith("inngest.")
        }
        if inngest_imports:
            offenders.append(f"{path.relative_to(PACKAGE)}: {sorted(inngest_imports)}")
    assert offenders == []
