"""The catalog's `producers` match the code: a service is declared the producer of an event shape
exactly when its source sends that shape.

"Sends" is read from each service's source package (tests excluded):
- in its Inngest functions (`functions.py`, or any module of a `functions/` package) an event
  model built as an argument of `send_event(...)` / `send_events(...)`, or assigned to a name
  that such a call receives in the same function;
- anywhere else in the package (a gateway builds events to store them in its outbox), any
  construction of an event model.
A model built only to convert a hand-sent variant (support-worker's `store-inline-email`) is
not a send.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from shared_events import CATALOG, EventModel
from shared_events.catalog import VARIANTS

ROOT = Path(__file__).resolve().parents[2]
NOT_SERVICES = {"operator", "engine"}
SEND_CALLS = {"send_event", "send_events"}
NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
MODELS: dict[str, type[EventModel]] = {
    model.__name__: model
    for model in [*CATALOG.values(), *(v for variants in VARIANTS.values() for v in variants)]
}


def service_packages() -> dict[str, Path]:
    """Service name (its folder, which is also its Inngest app id) -> its source package."""
    packages = {}
    for pyproject in sorted(ROOT.glob("services/*/pyproject.toml")):
        [package] = [
            p for p in (pyproject.parent / "src").iterdir() if (p / "__init__.py").exists()
        ]
        packages[pyproject.parent.name] = package
    return packages


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def constructions(node: ast.AST) -> Iterator[tuple[str, int]]:
    """(model class name, line) of every event-model construction under `node`."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and called_name(child) in MODELS:
            yield str(called_name(child)), child.lineno


def is_functions_module(path: Path, package: Path) -> bool:
    parts = path.relative_to(package).parts
    return parts == ("functions.py",) or parts[0] == "functions"


def sent_in_function(function: ast.AST) -> Iterator[tuple[str, int]]:
    """Models a function's own body hands to `send_event(s)`, directly or through a name."""
    body = [node for stmt in getattr(function, "body", []) for node in own_nodes(stmt)]
    sent_names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Call) and called_name(node) in SEND_CALLS:
            for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                yield from constructions(argument)
                sent_names |= {n.id for n in ast.walk(argument) if isinstance(n, ast.Name)}
    for node in body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if names & sent_names:
                yield from constructions(node.value)


def own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a statement, not descending into nested function definitions."""
    if isinstance(node, NESTED_SCOPES):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from own_nodes(child)


def sends_by_service() -> dict[str, dict[str, list[str]]]:
    """Model class name -> service -> where it is sent (`path:line`)."""
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for service, package in service_packages().items():
        for path in sorted(package.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            if is_functions_module(path, package):
                functions = [
                    node
                    for node in ast.walk(tree)
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                hits = [hit for function in functions for hit in sent_in_function(function)]
            else:
                hits = list(constructions(tree))
            for model, line in hits:
                found[model][service].append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_declared_service_producers_are_the_services_that_send() -> None:
    sends = sends_by_service()
    problems = []
    for name, model in sorted(MODELS.items()):
        declared = set(model.producers) - NOT_SERVICES
        in_code = set(sends.get(name, {}))
        for service in sorted(in_code - declared):
            where = ", ".join(sends[name][service])
            problems.append(f"{name}: {service} sends it ({where}) but is not in its producers")
        for service in sorted(declared - in_code):
            problems.append(f"{name}: declared produced by {service}, which never sends it")
    assert problems == [], "\n".join(problems)


def test_producers_name_services_or_people_or_the_engine() -> None:
    known = set(service_packages()) | NOT_SERVICES
    unknown = {
        f"{name}: {producer}"
        for name, model in MODELS.items()
        for producer in model.producers
        if producer not in known
    }
    assert unknown == set()


def test_the_scan_sees_the_sends_it_must() -> None:
    # Guards the scanner: one send through a name (a list built for send_events), one inline,
    # one outside the Inngest functions (the gateway's outbox), one conversion that is no send.
    sends = sends_by_service()
    assert "support-worker" in sends["CustomerHealthCheckRequested"]
    assert "risk-worker" in sends["RiskProfileUpdated"]
    assert "ingest-gateway" in sends["CustomerEmailReceived"]
    assert "support-worker" not in sends["CustomerEmailReceived"]
