"""The devserver package has no import circle.

The graph is read from the source with `ast`: one node per module of `devserver`, one edge per
import of another `devserver` module anywhere in the importing module: at the top, under
`if TYPE_CHECKING:` (a circle there is still two modules that each need to know the other) and
inside functions (a deferred import that closes a circle only hides it). `from pkg import name` is
an edge to `pkg.name` when that is a module, else to `pkg`. The implicit import of a parent
package's `__init__` is not an edge (import-linter and grimp do the same), or every submodule would
depend on its package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import devserver

PACKAGE = "devserver"
ROOT = Path(devserver.__file__).parent


def module_files(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {name for name in found if name in known and name != module}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    known = set(files)
    return {module: imported_modules(module, path, known) for module, path in files.items()}


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan): each is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """For each component, one concrete circle through its first module."""
    return [circle_in(graph, set(component)) for component in components(graph)]


def circle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete circle a -> b -> ... -> a through the component (breadth-first back to a)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no circle through {start}")  # a component always has one


def test_the_devserver_package_has_no_import_circle() -> None:
    graph = import_graph()
    assert "devserver.engine" in graph and len(graph) > 30, sorted(graph)
    found = components(graph)
    assert not found, "import circles in devserver:\n" + "\n".join(
        f"  {' -> '.join(circle_in(graph, set(members)))} (modules in the circle: "
        f"{', '.join(members)})"
        for members in found
    )


def test_the_checker_finds_a_circle_under_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "devserver"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from devserver.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from devserver import a\nB = 1\n"
    )
    (package / "c.py").write_text("def later():\n    from . import d\n")
    (package / "d.py").write_text("from devserver.c import later\n")
    graph = import_graph(package)
    assert graph["devserver.b"] == {"devserver.a"}
    assert graph["devserver.c"] == {"devserver.d"}  # deferred, relative: still an edge
    assert cycles(graph) == [
        ["devserver.a", "devserver.b", "devserver.a"],
        ["devserver.c", "devserver.d", "devserver.c"],
    ]
