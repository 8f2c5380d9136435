"""The Inngest boundary as code: in a service's package only its `functions` module (or package)
and `app.py` may import `inngest`; domain code (agent, tools, scoring, channels, repositories)
never does.

Read with `ast`, so every form counts (`import inngest`, `import inngest.experimental as x`,
`from inngest import ...`, `from inngest.experimental import ...`, also inside functions or
`if TYPE_CHECKING:`) and a mention in a string or comment does not. `importlib.import_module`
and `__import__` with a literal `inngest...` name count too. Used by
`tests/repo/test_inngest_boundary.py` for every service under `services/` and by the tests
`nerve new-service` generates.
"""

from __future__ import annotations

import ast
from pathlib import Path

INNGEST = "inngest"
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _is_inngest(module: str) -> bool:
    return module == INNGEST or module.startswith(f"{INNGEST}.")


def _dynamic_import_name(node: ast.Call) -> str | None:
    """The literal module name of `importlib.import_module("...")` / `__import__("...")`."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in DYNAMIC_IMPORTS or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def inngest_imports(source: str, filename: str = "<source>") -> list[str]:
    """Each import of `inngest` in `source`, as `line N: <module>`, in source order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call):
            names = [name for name in [_dynamic_import_name(node)] if name]
        else:
            continue
        found += [(node.lineno, name) for name in names if _is_inngest(name)]
    return [f"line {line}: {name}" for line, name in sorted(found)]


def may_import_inngest(package: Path, module: Path) -> bool:
    """Whether `module` (a file inside the service package `package`) is on the Inngest side:
    `functions.py`, anything in a `functions/` package, or `app.py`, at the package's top."""
    parts = module.relative_to(package).parts
    return parts[0] == "functions" or parts in (("functions.py",), ("app.py",))


def boundary_offenders(package: Path) -> list[str]:
    """`<module>: line N: <import>` for each module of `package` that imports `inngest` but is
    not allowed to (empty when the package keeps the boundary)."""
    offenders: list[str] = []
    for module in sorted(package.rglob("*.py")):
        if may_import_inngest(package, module):
            continue
        relative = module.relative_to(package).as_posix()
        for found in inngest_imports(module.read_text(), filename=str(module)):
            offenders.append(f"{relative}: {found}")
    return offenders
