"""docker-compose.yml as data: compose's `${VAR}` interpolation and the variables it requires.

Used by `nerve compose-env` (it checks that the `.env` it writes satisfies every `${VAR:?...}` of
the compose file) and by the tests that prove the compose file (structure, image environments,
the e2e stack that runs the compose flags without Docker), so they all read one configuration
source instead of copying it.

Interpolation follows compose's rules for the forms the file uses:
`${VAR}`, `${VAR:-default}` (unset or empty -> default), `${VAR-default}` (unset -> default),
`${VAR:?message}` (unset or empty -> error), `${VAR?message}` (unset -> error) and `$$` (a `$`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariableError(ValueError):
    """A `${VAR:?message}` whose variable is unset (or empty)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if message else f"{name} is required")
        self.name = name


def load(path: Path) -> dict[str, Any]:
    """The compose file as YAML data, before interpolation."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a compose file")
    return document


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """`value` (a string, list or mapping from the compose file) with every reference resolved."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda match: _resolve(match, env), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def _resolve(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    value = env.get(name)
    if op is None:
        return value or ""
    if op == ":-":
        return value or arg
    if op == "-":
        return arg if value is None else value
    if op == ":?" and not value:
        raise MissingVariableError(name, arg)
    if op == "?" and value is None:
        raise MissingVariableError(name, arg)
    return value or ""


def references(value: Any) -> list[tuple[str, str | None, str]]:
    """Every `${VAR...}` in `value` as (name, operator or None, argument), in file order."""
    found: list[tuple[str, str | None, str]] = []
    if isinstance(value, str):
        for match in _REFERENCE.finditer(value):
            if match.group("name"):
                found.append((match.group("name"), match.group("op"), match.group("arg") or ""))
    elif isinstance(value, list):
        for item in value:
            found += references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            found += references(key) + references(item)
    return found


def required_variables(document: Mapping[str, Any]) -> dict[str, str]:
    """Variables the compose file cannot start without (`${VAR:?message}`) -> their message."""
    return {name: arg for name, op, arg in references(dict(document)) if op in (":?", "?")}


def defaults(document: Mapping[str, Any]) -> dict[str, str]:
    """Variables with a default in the compose file (`${VAR:-default}`) -> the default."""
    return {name: arg for name, op, arg in references(dict(document)) if op in (":-", "-")}
