"""Event templates for the "Send event" JSON editor.

From the project's typed event catalog (`shared_events.catalog.CATALOG`, when installed: the
devserver does not require it) plus the names of recently received events. A template is a
ready-to-edit event: `{"name": ..., "data": {<required fields with placeholder values>}}`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

_PLACEHOLDERS: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "array": [],
    "object": {},
}


def _placeholder(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    if "default" in schema:
        return schema["default"]
    if "$ref" in schema:
        target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return _placeholder(target, defs)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if o.get("type") != "null"] or options
            return _placeholder(non_null[0], defs)
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return _object_example(schema, defs)
    return _PLACEHOLDERS.get(str(kind))


def _object_example(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", properties.keys()))
    return {name: _placeholder(prop, defs) for name, prop in properties.items() if name in required}


def catalog_templates() -> list[dict[str, Any]]:
    """One template per sendable catalog event (empty when shared_events is not installed)."""
    try:
        module = importlib.import_module("shared_events.catalog")
    except ImportError:
        return []
    catalog: Mapping[str, Any] = getattr(module, "CATALOG", {})
    templates: list[dict[str, Any]] = []
    for name, model in sorted(catalog.items()):
        if not getattr(model, "sendable", True):
            continue
        try:
            schema = model.model_json_schema()
        except Exception:  # a model that cannot describe itself still gets an empty template
            schema = {}
        data = _object_example(schema, schema.get("$defs", {})) if schema else {}
        templates.append({"name": name, "data": data, "source": "catalog"})
    return templates


def templates_for(recent_names: Iterable[str]) -> list[dict[str, Any]]:
    templates = catalog_templates()
    known = {t["name"] for t in templates}
    for name in recent_names:
        if name and name not in known and not name.startswith("inngest/"):
            known.add(name)
            templates.append({"name": name, "data": {}, "source": "recent"})
    return templates
