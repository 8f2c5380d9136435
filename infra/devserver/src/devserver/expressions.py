"""Inngest expressions: CEL with Inngest's leniencies (infra/devserver/docs/expressions.md).

Parsing is cel-python's (`celpy.celparser.CELParser`, the CEL grammar; `celpy.evaluation.celstr`
for string literals; re2-backed `function_matches`). Evaluation is ours: celpy's evaluator is
strict CEL (a missing map key is an error, `1 == 1.0` has no overload, `"a" + 1` fails), while
Inngest's server wraps cel-go in decorators that make all of those lenient. The syntax tree is
compiled once into Python closures that apply the rules of `devserver.flow.cel_values` and
`devserver.flow.cel_functions`, which is
also ~50x faster than celpy's tree-walking interpreter (the engine evaluates an expression per
event per function).

    compile_expression(source, restrictive=False) -> CompiledExpression   (LRU-cached)
    CompiledExpression.evaluate(variables) -> value (overall unknown -> False)
    CompiledExpression.matches(variables) -> bool  (unknown / error / non-true -> False)
    interpolate(source, event=...) -> source with `event.*` replaced by literals
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import lark
from celpy.celparser import CELParseError, CELParser

from devserver.flow.cel_compiler import DECLARED_VARIABLES, CompileError, Compiler
from devserver.flow.cel_policy import Interpolator, restrictive_violations
from devserver.flow.cel_values import Unknown

__all__ = [
    "CompiledExpression",
    "ExpressionError",
    "compile_expression",
    "interpolate",
]

Scope = dict[str, Any]
SyntaxTree = lark.Tree[Any]
Node = Callable[[Scope], Any]

# Top-level names the server's CEL environment declares (pkg/expressions/env.go; `vars` is used
# by its lifted expressions). Anything else is an undeclared reference, a compile error.
VARIABLES = DECLARED_VARIABLES
_MAX_SOURCE_LENGTH = 10_000


class ExpressionError(ValueError):
    """An expression that does not compile (syntax, unknown name/function) or breaks policy."""


class CompiledExpression:
    """A compiled expression; immutable, safe to share and to evaluate concurrently."""

    __slots__ = ("_node", "references", "source")

    def __init__(self, source: str, node: Node, references: frozenset[str]) -> None:
        self.source = source
        self._node = node
        self.references = references  # top-level variables the expression reads

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """The expression's value; an overall unknown/error result is False (as in Go)."""
        result = self._node(dict(variables))
        return False if isinstance(result, Unknown) else result

    def matches(self, variables: Mapping[str, Any]) -> bool:
        """True only when the expression evaluates to boolean true."""
        try:
            return self.evaluate(variables) is True
        except RecursionError:
            return False

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"


_parser: CELParser | None = None


def _parse(source: str) -> SyntaxTree:
    global _parser
    if _parser is None:
        _parser = CELParser()
    try:
        return _parser.parse(source)
    except CELParseError as error:
        line = getattr(error, "line", None)
        column = getattr(error, "column", None)
        where = f" at {line}:{column}" if line else ""
        raise ExpressionError(f"invalid expression {source!r}{where}: {error.args[0]}") from None
    except lark.exceptions.LarkError as error:
        raise ExpressionError(f"invalid expression {source!r}: {error}") from None


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str, *, restrictive: bool = False) -> CompiledExpression:
    """Compile (and cache) an expression. Raises ExpressionError naming the problem."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("expression is empty")
    if len(source) > _MAX_SOURCE_LENGTH:
        raise ExpressionError(f"expression is longer than {_MAX_SOURCE_LENGTH} characters")
    tree = _parse(source)
    if restrictive:
        violations = restrictive_violations(tree)
        if violations:
            raise ExpressionError(f"expression {source!r} is not allowed: {'; '.join(violations)}")
    compiler = Compiler(VARIABLES)
    try:
        node = compiler.compile(tree)
    except CompileError as error:
        raise ExpressionError(f"invalid expression {source!r}: {error}") from None
    return CompiledExpression(source, node, frozenset(compiler.references))


def interpolate(source: str, *, event: Mapping[str, Any]) -> str:
    """Replace the `event.*` parts of an expression by literals taken from `event`.

    Used for `wait_for_event` and `cancel[].if`: the stored expression then reads only `async`
    (the candidate event). Sub-expressions that do not read `async` are evaluated now and replaced
    by their literal value; `a && b` / `a || b` fold when a known side decides the result, so a
    condition that can never match reduces to `false`. A missing `event` field stays as written
    (it is unknown at match time too, so it cannot match).
    """
    if "event" not in source:
        return source
    tree = _parse(source)
    compile_expression(source)  # names and functions must be valid
    return Interpolator(source, {"event": event}).rewrite(tree)


def is_constant(source: str) -> bool:
    """True when the expression reads no variable (e.g. an interpolated `false`)."""
    return not compile_expression(source).references
