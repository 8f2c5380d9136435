"""JSON Schemas of the catalog, committed under libs/shared-events/schemas/, and the check that
refuses breaking changes unless the event's `version` is bumped.

Layout: `schemas/events/<event name with / -> __>.v<version>.json` (one file per event version;
older versions stay as history), `schemas/events/<name>+<variant>.v<version>.json` for a
documented variant of an event (catalog.VARIANTS) and
`schemas/functions/<app-fn>.<input|output>.v1.json`.

Breaking (for a consumer on the committed schema): a field removed or renamed, a field's type
changed (type, format, enum/const values, item or member types), a new required field, or an
optional field made required, and an event removed from the catalog. Anything else that differs
(a new optional field, a description or constraint change) is compatible drift: the committed file
must still be regenerated, but no bump is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .base import EventModel
from .catalog import CATALOG, VARIANTS
from .refs import FUNCTION_REFS, FunctionRef

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
_TYPE_KEYS = ("type", "format", "enum", "const", "items", "anyOf", "oneOf", "allOf", "properties")


@dataclass(frozen=True)
class SchemaDoc:
    """One schema file: what it describes and its content."""

    kind: str  # "event" | "function"
    name: str  # event name, or `<composite>.input` / `<composite>.output`
    version: int
    schema: dict[str, Any]

    @property
    def relative_path(self) -> str:
        if self.kind == "event":
            return f"events/{self.name.replace('/', '__')}.v{self.version}.json"
        return f"functions/{self.name}.v{self.version}.json"

    def render(self) -> str:
        document = {"kind": self.kind, "name": self.name, "version": self.version}
        document["schema"] = self.schema
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


@dataclass
class CheckReport:
    """What `check_schemas` found; `ok` when nothing needs attention."""

    breaking: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaking and not self.stale

    def lines(self) -> list[str]:
        out = [f"BREAKING: {line}" for line in self.breaking]
        out += [f"out of date: {line}" for line in self.stale]
        return out


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def current_docs(
    catalog: Mapping[str, type[EventModel]] | None = None,
    refs: Mapping[str, FunctionRef[Any, Any]] | None = None,
) -> list[SchemaDoc]:
    """The schema documents of the code as it is now."""
    docs = [
        SchemaDoc("event", name, model.version, _model_schema(model))
        for name, model in sorted((catalog if catalog is not None else CATALOG).items())
    ]
    for name, variants in sorted(VARIANTS.items()):
        docs += [
            SchemaDoc("event", f"{name}+{v.variant}", v.version, _model_schema(v)) for v in variants
        ]
    for composite, ref in sorted((refs if refs is not None else FUNCTION_REFS).items()):
        version = int(getattr(ref, "version", 1))
        docs.append(
            SchemaDoc("function", f"{composite}.input", version, _model_schema(ref.input_model))
        )
        docs.append(
            SchemaDoc("function", f"{composite}.output", version, _model_schema(ref.output_model))
        )
    return docs


def load_committed(directory: Path) -> list[SchemaDoc]:
    docs = []
    for path in sorted(directory.glob("*/*.json")):
        raw = json.loads(path.read_text())
        docs.append(SchemaDoc(raw["kind"], raw["name"], int(raw["version"]), raw["schema"]))
    return docs


# -- comparison ---------------------------------------------------------------------------------


def _resolve(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """Inline `$ref`s and keep only what defines a type (descriptions, titles, bounds dropped)."""
    if depth > 20:
        return "<recursive>"
    if isinstance(node, list):
        return [_resolve(item, defs, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1]
        return _resolve(defs.get(target, {}), defs, depth + 1)
    signature: dict[str, Any] = {}
    for key in _TYPE_KEYS:
        if key in node:
            value = node[key]
            if key == "properties":
                value = {name: _resolve(sub, defs, depth + 1) for name, sub in value.items()}
            else:
                value = _resolve(value, defs, depth + 1)
            signature[key] = value
    if "required" in node and "properties" in node:
        signature["required"] = sorted(node["required"])
    return signature


def _required(schema: Mapping[str, Any]) -> set[str]:
    return set(schema.get("required", []))


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why a consumer of `old` would break on `new` (empty when compatible)."""
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    problems = []
    for name in sorted(old_props):
        if name not in new_props:
            problems.append(f"field '{name}' removed or renamed")
            continue
        before = _resolve(old_props[name], old_defs)
        after = _resolve(new_props[name], new_defs)
        if before != after:
            problems.append(
                f"field '{name}' retyped: {json.dumps(before, sort_keys=True)} -> "
                f"{json.dumps(after, sort_keys=True)}"
            )
    for name in sorted(_required(new) - _required(old)):
        if name in old_props:
            problems.append(f"field '{name}' became required")
        else:
            problems.append(f"new required field '{name}'")
    return problems


def _key(doc: SchemaDoc) -> tuple[str, str]:
    return (doc.kind, doc.name)


def check_schemas(
    directory: Path = DEFAULT_SCHEMA_DIR,
    docs: Iterable[SchemaDoc] | None = None,
) -> CheckReport:
    """Compare the code's schemas with the committed files."""
    report = CheckReport()
    current = list(docs if docs is not None else current_docs())
    committed = load_committed(directory) if directory.exists() else []
    by_key: dict[tuple[str, str], dict[int, SchemaDoc]] = {}
    for doc in committed:
        by_key.setdefault(_key(doc), {})[doc.version] = doc
    current_keys = {_key(doc) for doc in current}

    for doc in current:
        versions = by_key.get(_key(doc), {})
        same_version = versions.get(doc.version)
        if same_version is None:
            older = [v for v in versions if v > doc.version]
            if older:
                report.breaking.append(
                    f"{doc.name}: version went down to v{doc.version} (v{max(older)} is committed)"
                )
            else:
                report.stale.append(f"{doc.name} v{doc.version}: no committed schema")
            continue
        problems = breaking_changes(same_version.schema, doc.schema)
        if problems:
            report.breaking.append(
                f"{doc.name} v{doc.version}: {'; '.join(problems)} — bump the version "
                "(and run `python -m shared_events schemas`) or undo the change"
            )
        elif same_version.schema != doc.schema:
            report.stale.append(f"{doc.name} v{doc.version}: compatible change not committed")

    for key, versions in sorted(by_key.items()):
        if key not in current_keys:
            report.breaking.append(
                f"{key[1]}: {key[0]} removed from the catalog (committed v{max(versions)})"
            )
    return report


class BreakingSchemaChange(RuntimeError):
    """`write_schemas` refused to overwrite a committed schema with a breaking change."""


def write_schemas(
    directory: Path = DEFAULT_SCHEMA_DIR,
    docs: Iterable[SchemaDoc] | None = None,
) -> list[Path]:
    """Write the current schemas. Refuses (writing nothing) when a same-version file would change
    in a breaking way; other versions' files are kept as history. Returns the files written."""
    current = list(docs if docs is not None else current_docs())
    report = check_schemas(directory, current)
    same_version_breaks = [
        line for line in report.breaking if "removed from the catalog" not in line
    ]
    if same_version_breaks:
        raise BreakingSchemaChange("; ".join(same_version_breaks))
    written = []
    for doc in current:
        path = directory / doc.relative_path
        text = doc.render()
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written
