"""Restrictive validation (cancel `if`) and `event.*` interpolation over celpy syntax trees."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lark

from devserver.flow.cel_compiler import (
    DECLARED_VARIABLES,
    MACROS,
    RESTRICTIVE_CALLS,
    VOLATILE_CALLS,
    CompileError,
    Compiler,
    SyntaxTree,
    unwrap,
)
from devserver.flow.cel_values import UNKNOWN


def restrictive_violations(tree: SyntaxTree) -> list[str]:
    """Policy of pkg/expressions/validation.go: no macros; only logic, comparison, index, `in`,
    arithmetic and the int/uint/double/date/now_plus/now_minus/duration calls."""
    violations: list[str] = []
    for node in tree.iter_subtrees_topdown():  # type: ignore[no-untyped-call]
        if node.data in ("ident_arg", "dot_ident_arg", "member_dot_arg"):
            name = str(node.children[1] if node.data == "member_dot_arg" else node.children[0])
            if name in MACROS:
                violations.append(f"macros are disallowed (uses '{name}')")
            elif name not in RESTRICTIVE_CALLS:
                violations.append(f"function calls are disallowed (uses '{name}')")
    return violations


def literal_source(value: Any) -> str | None:
    """CEL source for a JSON-like value, or None when it has no literal form."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        text = repr(value)
        return f"({text})" if value < 0 else text
    if isinstance(value, str):
        return "'" + "".join(_escape(char) for char in value) + "'"
    if isinstance(value, list):
        items = [literal_source(item) for item in value]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        pairs = [(literal_source(k), literal_source(item)) for k, item in value.items()]
        if any(k is None or item is None for k, item in pairs):
            return None
        return "{" + ", ".join(f"{k}: {item}" for k, item in pairs) + "}"
    return None


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04x}"
    return char


class Interpolator:
    """Replaces the maximal sub-expressions that read only `event` by their literal values."""

    def __init__(self, source: str, variables: Mapping[str, Any]) -> None:
        self.source = source
        self.variables = dict(variables)
        self.replacements: list[tuple[int, int, str]] = []

    def rewrite(self, tree: SyntaxTree) -> str:
        self._visit(tree)
        text = self.source
        for start, end, literal in sorted(self.replacements, reverse=True):
            text = text[:start] + literal + text[end:]
        return text

    def _constant(self, tree: Any) -> tuple[bool, Any]:
        """(True, value) when `tree` reads `event` and nothing else that varies."""
        compiler = Compiler(DECLARED_VARIABLES)
        try:
            node = compiler.compile(tree)
        except CompileError:  # operator wrappers, macro bodies using the macro's variable
            return False, None
        if compiler.references != {"event"} or compiler.calls & VOLATILE_CALLS:
            return False, None
        return True, node(dict(self.variables))

    def _replace(self, tree: SyntaxTree, literal: str) -> None:
        self.replacements.append((tree.meta.start_pos, tree.meta.end_pos, literal))

    def _visit(self, tree: Any) -> None:
        tree = unwrap(tree)
        if not isinstance(tree, lark.Tree):
            return
        constant, value = self._constant(tree)
        if constant:
            literal = None if value is UNKNOWN else literal_source(value)
            if literal is not None:
                self._replace(tree, literal)
            return  # unknown (missing field): leave as written; it cannot match later either
        if tree.data in ("conditionaland", "conditionalor") and self._fold(tree):
            return
        for child in tree.children:
            self._visit(child)

    def _fold(self, tree: SyntaxTree) -> bool:
        """`false && x` -> false, `true || x` -> true when a side is known now."""
        deciding = tree.data == "conditionalor"
        for child in tree.children:
            constant, value = self._constant(child)
            if constant and value is deciding:
                self._replace(tree, "true" if deciding else "false")
                return True
        return False
