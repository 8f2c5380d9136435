"""The facts behind docs/architecture.md, and the source scans that find invokes and waits.

Used by scripts/architecture_graph.py. The scans read each service's source package (tests
excluded) with `ast`:
- `step.invoke` edges: a typed reference of `shared_events.refs` (a `FunctionRef`) handed to a
  call named `invoke` / `invoke_by_id` (another app's function), or `<step>.invoke(...,
  function=<name>)` where the name is one of the service's own functions (directly, through a
  local alias, or as a module attribute);
- waits: a call named `wait_for_event` given a catalog model (`shared_events.steps`'s helper) or
  `event=<Model>.name`.
A call the scan cannot resolve stops the generator, naming the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared_events import CATALOG, refs
from shared_events.catalog import VARIANTS

MODEL_EVENTS = {
    model.__name__: model.name
    for model in [*CATALOG.values(), *(v for variants in VARIANTS.values() for v in variants)]
}
REFS = {name: ref for name, ref in vars(refs).items() if isinstance(ref, refs.FunctionRef)}


@dataclass(frozen=True)
class Function:
    app: str
    local_id: str
    name: str
    events: tuple[tuple[str, str | None], ...]  # (event name, trigger expression)
    crons: tuple[str, ...]
    cancelled_by: tuple[str, ...]
    source: str  # repository-relative path of the handler's module
    handler: str  # the handler's Python name

    @property
    def label(self) -> str:
        return f"{self.app}/{self.local_id}"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    source: str


@dataclass(frozen=True)
class Service:
    name: str
    package: Path
    functions: tuple[Function, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Invoke:
    caller: str  # service
    target: Function
    contract: str | None  # the shared_events.refs name, for a cross-app invoke
    site: str  # repository-relative path of the calling module


@dataclass(frozen=True)
class Hop:
    """One step of a walk-through: a route or a function of a service, and what it does."""

    service: str
    caption: str
    function: str | None = None  # Inngest function id
    route: tuple[str, str] | None = None  # (method, path)
    on: str | None = None  # the event that starts it (checked against its triggers)
    sends: str | None = None  # an event it sends (checked against the catalog's producers)
    waits: str | None = None  # an event it waits for (checked against the source)
    invoked: bool = False  # started by step.invoke (checked against the invoke edges)


@dataclass(frozen=True)
class Graph:
    services: tuple[Service, ...]
    invokes: tuple[Invoke, ...]
    waits: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def functions(self) -> tuple[Function, ...]:
        return tuple(fn for service in self.services for fn in service.functions)

    def function(self, app: str, local_id: str) -> Function | None:
        return next((f for f in self.functions if (f.app, f.local_id) == (app, local_id)), None)

    def route(self, service: str, method: str, path: str) -> Route | None:
        routes = next((s.routes for s in self.services if s.name == service), ())
        return next((r for r in routes if (r.method, r.path) == (method, path)), None)

    def invokers_of(self, fn: Function) -> tuple[Invoke, ...]:
        return tuple(edge for edge in self.invokes if edge.target == fn)


def source_files(service: Service, root: Path) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(service.package.rglob("*.py")):
        yield path.relative_to(root).as_posix(), ast.parse(path.read_text(), filename=str(path))


def called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def names_in(node: ast.AST) -> set[str]:
    """Names and attribute names under `node` (`SCORE_REFUND_RISK`, `refs.SCORE_REFUND_RISK`)."""
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
    return found


def aliases(tree: ast.Module) -> dict[str, str]:
    """`a = b` assignments of one name to another anywhere in a module."""
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Name | ast.Attribute)
        ):
            value = node.value
            found[node.targets[0].id] = value.id if isinstance(value, ast.Name) else value.attr
    return found


def own_target(name: str, service: Service, module_aliases: dict[str, str]) -> Function | None:
    """The service's function a name stands for: its handler's name or its id in snake case,
    through `a = b` aliases and an `_fn` / `_function` suffix (`deliver_fn = deliver`)."""
    seen = set()
    while name in module_aliases and name not in seen:
        seen.add(name)
        name = module_aliases[name]
    candidates = {name, name.removesuffix("_fn"), name.removesuffix("_function")}
    for fn in service.functions:
        if candidates & {fn.handler, fn.local_id.replace("-", "_")}:
            return fn
    return None


def ref_target(name: str, services: tuple[Service, ...], site: str) -> Function:
    ref = REFS[name]
    for service in services:
        for fn in service.functions:
            if (fn.app, fn.local_id) == (ref.app_id, ref.function_id):
                return fn
    raise SystemExit(f"{site}: {name} names {ref.composite_id}, which no service serves")


def scan_invokes(service: Service, services: tuple[Service, ...], root: Path) -> Iterator[Invoke]:
    for site, tree in source_files(service, root):
        module_aliases = aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called(node) in ("invoke", "invoke_by_id"):
                edge = invoke_edge(node, service, services, site, module_aliases)
                if edge is not None:
                    yield edge


def invoke_edge(
    call: ast.Call,
    service: Service,
    services: tuple[Service, ...],
    site: str,
    module_aliases: dict[str, str],
) -> Invoke | None:
    """The edge one `invoke(...)` call draws, None for a call that is not an Inngest invoke."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    arguments = [*call.args, *(v for k, v in keywords.items() if k != "function")]
    contracts = sorted(n for a in arguments for n in names_in(a) if n in REFS)
    if contracts:
        return Invoke(service.name, ref_target(contracts[0], services, site), contracts[0], site)
    function = keywords.get("function")
    if function is not None:
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        target = own_target(name, service, module_aliases)
        if target is None:
            raise SystemExit(f"{site}:{call.lineno}: cannot tell which function is invoked")
        return Invoke(service.name, target, None, site)
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    if receiver is not None and "step" in names_in(receiver):
        raise SystemExit(
            f"{site}:{call.lineno}: a step.invoke without a shared_events.refs reference or "
            "`function=`; the architecture graph cannot name its target"
        )
    return None  # some other library's `invoke`


def scan_waits(service: Service, root: Path) -> dict[str, tuple[str, ...]]:
    """Event name -> the modules of this service that wait for it."""
    found: dict[str, set[str]] = {}
    for site, tree in source_files(service, root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called(node) == "wait_for_event":
                for event in waited_events(node):
                    found.setdefault(event, set()).add(site)
    return {event: tuple(sorted(sites)) for event, sites in found.items()}


def waited_events(call: ast.Call) -> set[str]:
    models = {n for a in call.args for n in names_in(a) if n in MODEL_EVENTS}
    for keyword in call.keywords:
        if keyword.arg == "event" and isinstance(keyword.value, ast.Constant):
            models.add(str(keyword.value.value))
        elif keyword.arg in ("event", "model"):
            models |= {n for n in names_in(keyword.value) if n in MODEL_EVENTS}
    return {MODEL_EVENTS.get(model, model) for model in models}
