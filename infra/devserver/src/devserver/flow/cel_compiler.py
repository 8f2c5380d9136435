"""Compile celpy's CEL syntax tree into Python closures with Inngest's semantics.

Used by `devserver.expressions` (the public API). Every node becomes `Callable[[scope], value]`
where scope maps variable names (event, async, vars, macro variables) to values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import lark
from celpy.evaluation import celbytes, celstr

from devserver.flow import cel_functions as fns
from devserver.flow import cel_values as v
from devserver.flow.cel_values import UNKNOWN, Uint

Scope = dict[str, Any]
SyntaxTree = lark.Tree[Any]
Node = Callable[[Scope], Any]

DECLARED_VARIABLES: Final = frozenset(
    {"event", "async", "vars", "steps", "response", "user", "actions", "action"}
)
MACROS: Final = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
# Calls the restrictive policy allows besides operators (pkg/expressions/validation.go).
RESTRICTIVE_CALLS: Final = frozenset(
    {"int", "uint", "double", "date", "now_plus", "now_minus", "duration"}
)
VOLATILE_CALLS: Final = frozenset({"now", "now_plus", "now_minus"})
_UNWRAP: Final = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
    | {"unary", "member", "primary"}
)


class CompileError(ValueError):
    pass


def unwrap(tree: Any) -> Any:
    """Descend single-child wrapper rules to the meaningful node."""
    while isinstance(tree, lark.Tree) and tree.data in _UNWRAP and len(tree.children) == 1:
        tree = tree.children[0]
    return tree


def _call(name: str, impl: Callable[..., Any], args: list[Node]) -> Node:
    """A function call with Go's unknown handling: size(unknown) = 0, anything else false."""
    is_size = name == "size"
    is_dyn = name == "dyn"

    def call(scope: Scope) -> Any:
        values = [arg(scope) for arg in args]
        if not is_dyn and any(value is UNKNOWN for value in values):
            return 0 if is_size else False
        try:
            return impl(*values)
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            return UNKNOWN

    return call


def _select(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping) and name in obj:
        return v.from_json(obj[name])
    return UNKNOWN


def _index(obj: Any, key: Any) -> Any:
    if obj is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    if isinstance(obj, list):
        if isinstance(key, bool) or not v.is_number(key) or key != int(key):
            return UNKNOWN
        position = int(key)
        return v.from_json(obj[position]) if 0 <= position < len(obj) else UNKNOWN
    if isinstance(obj, Mapping):
        if isinstance(key, str | bool):
            return v.from_json(obj[key]) if key in obj else UNKNOWN
        if v.is_number(key):
            for candidate, value in obj.items():
                if v.is_number(candidate) and not isinstance(candidate, bool) and candidate == key:
                    return v.from_json(value)
        return UNKNOWN
    return UNKNOWN


def _literal(token: lark.Token) -> Any:
    kind, text = token.type, token.value
    if kind == "INT_LIT":
        negative = text.startswith("-")
        body = text.lstrip("-")
        number = int(body, 16) if body.lower().startswith("0x") else int(body)
        return fns.to_int(-number if negative else number)
    if kind == "UINT_LIT":
        body = text[:-1]
        return Uint(int(body, 16) if body.lower().startswith("0x") else int(body))
    if kind == "FLOAT_LIT":
        return float(text)
    if kind in ("STRING_LIT", "MLSTRING_LIT"):
        return str(celstr(token))
    if kind == "BYTES_LIT":
        return bytes(celbytes(token))
    if kind == "BOOL_LIT":
        return text == "true"
    if kind == "NULL_LIT":
        return None
    raise CompileError(f"unsupported literal {text!r}")


class Compiler:
    """Turns one parsed expression into a closure; records which variables it reads."""

    def __init__(self, variables: Iterable[str]) -> None:
        self.variables = frozenset(variables)
        self.references: set[str] = set()
        self.calls: set[str] = set()

    def compile(self, tree: SyntaxTree) -> Node:
        return self._node(tree, frozenset())

    def _node(self, tree: Any, bound: frozenset[str]) -> Node:
        tree = unwrap(tree)
        if isinstance(tree, lark.Token):
            raise CompileError(f"unexpected token {tree.value!r}")
        handler = getattr(self, f"_{tree.data}", None)
        if handler is None:
            raise CompileError(f"unsupported syntax {tree.data!r}")
        node: Node = handler(tree, bound)
        return node

    def _args(self, exprlist: Any, bound: frozenset[str]) -> list[Node]:
        if exprlist is None:
            return []
        return [self._node(child, bound) for child in exprlist.children]

    # -- logic -----------------------------------------------------------------------------------

    def _expr(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        condition, if_true, if_false = (self._node(c, bound) for c in tree.children)

        def ternary(scope: Scope) -> Any:
            value = condition(scope)
            if value is UNKNOWN:
                return UNKNOWN
            chosen = value if isinstance(value, bool) else v.truthy(value)
            return if_true(scope) if chosen else if_false(scope)

        return ternary

    def _chain(self, tree: SyntaxTree, bound: frozenset[str]) -> list[Node]:
        rule = tree.data
        terms: list[Node] = []
        while isinstance(tree, lark.Tree) and tree.data == rule and len(tree.children) == 2:
            left, right = tree.children
            terms.append(self._node(right, bound))
            tree = left
        terms.append(self._node(tree, bound))
        terms.reverse()
        return terms

    def _conditionalor(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        terms = self._chain(tree, bound)

        def logical_or(scope: Scope) -> Any:  # first truthy value, else the last value
            value: Any = False
            for term in terms:
                value = term(scope)
                if value is True or v.truthy(value):
                    return value
            return value

        return logical_or

    def _conditionaland(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        terms = self._chain(tree, bound)

        def logical_and(scope: Scope) -> Any:  # first falsy value, else the last value
            value: Any = True
            for term in terms:
                value = term(scope)
                if value is not True and not v.truthy(value):
                    return value
            return value

        return logical_and

    def _unary(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        operator, operand_tree = tree.children
        operand = self._node(operand_tree, bound)
        if operator.data == "unary_not":

            def logical_not(scope: Scope) -> Any:
                value = operand(scope)
                if isinstance(value, bool):
                    return not value
                return False if value is UNKNOWN else not v.truthy(value)

            return logical_not
        return lambda scope: v.negate(operand(scope))

    # -- operators ---------------------------------------------------------------------------------

    def _binary(self, tree: SyntaxTree, bound: frozenset[str]) -> tuple[str, Node, Node]:
        operator_tree, right_tree = tree.children
        (left_tree,) = operator_tree.children
        return operator_tree.data, self._node(left_tree, bound), self._node(right_tree, bound)

    def _relation(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        operator, left, right = self._binary(tree, bound)
        if operator == "relation_eq":
            return lambda scope: v.equals(left(scope), right(scope))
        if operator == "relation_ne":
            return lambda scope: v.not_equals(left(scope), right(scope))
        if operator == "relation_in":
            return lambda scope: v.contained_in(left(scope), right(scope))
        symbol = {"relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">="}
        op = symbol[operator]
        return lambda scope: v.order(op, left(scope), right(scope))

    def _addition(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        operator, left, right = self._binary(tree, bound)
        if operator == "addition_add":
            return lambda scope: v.add(left(scope), right(scope))
        return lambda scope: v.arithmetic("-", left(scope), right(scope))

    def _multiplication(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        operator, left, right = self._binary(tree, bound)
        op = {"multiplication_mul": "*", "multiplication_div": "/", "multiplication_mod": "%"}[
            operator
        ]
        return lambda scope: v.arithmetic(op, left(scope), right(scope))

    # -- members -----------------------------------------------------------------------------------

    def _member_dot(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        obj_tree, name_token = tree.children
        obj = self._node(obj_tree, bound)
        name = str(name_token)
        return lambda scope: _select(obj(scope), name)

    def _member_index(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        obj_tree, key_tree = tree.children
        obj, key = self._node(obj_tree, bound), self._node(key_tree, bound)
        return lambda scope: _index(obj(scope), key(scope))

    def _member_object(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        raise CompileError("message construction is not supported")

    def _member_dot_arg(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        receiver_tree, name_token, *rest = tree.children
        name = str(name_token)
        exprlist = rest[0] if rest else None
        self.calls.add(name)
        if name in MACROS and name != "has":
            return self._comprehension(name, receiver_tree, exprlist, bound)
        if name not in fns.METHODS:
            raise CompileError(f"undeclared reference to '{name}'")
        low, high, impl = fns.METHODS[name]
        args = [self._node(receiver_tree, bound), *self._args(exprlist, bound)]
        if not low <= len(args) <= high:
            raise CompileError(f"found no matching overload for '{name}'")
        return _call(name, impl, args)

    def _comprehension(
        self, name: str, receiver_tree: Any, exprlist: Any, bound: frozenset[str]
    ) -> Node:
        arg_trees = list(exprlist.children) if exprlist is not None else []
        expected = (2, 3) if name == "map" else (2,)
        if len(arg_trees) not in expected:
            raise CompileError(f"{name}() takes {' or '.join(map(str, expected))} arguments")
        variable = unwrap(arg_trees[0])
        if not (isinstance(variable, lark.Tree) and variable.data == "ident"):
            raise CompileError(f"{name}() needs a variable name as its first argument")
        var_name = str(variable.children[0])
        inner = bound | {var_name}
        receiver = self._node(receiver_tree, bound)
        bodies = [self._node(body, inner) for body in arg_trees[1:]]

        def comprehension(scope: Scope) -> Any:
            container = receiver(scope)
            if isinstance(container, list):
                items = [v.from_json(item) for item in container]
            elif isinstance(container, Mapping):
                items = list(container)
            else:
                return UNKNOWN
            results: list[Any] = []
            for item in items:
                local = dict(scope)
                local[var_name] = item
                results.append([body(local) for body in bodies])
            return _fold(name, items, results)

        return comprehension

    # -- primaries ---------------------------------------------------------------------------------

    def _ident(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        name = str(tree.children[0])
        if name not in bound and name not in self.variables:
            raise CompileError(f"undeclared reference to '{name}'")
        if name not in bound:
            self.references.add(name)
        return lambda scope: scope.get(name, UNKNOWN)

    _dot_ident = _ident

    def _ident_arg(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        name_token, *rest = tree.children
        name = str(name_token)
        exprlist = rest[0] if rest else None
        self.calls.add(name)
        if name == "has":
            return self._has(exprlist, bound)
        if name not in fns.FUNCTIONS:
            raise CompileError(f"undeclared reference to '{name}'")
        low, high, impl = fns.FUNCTIONS[name]
        args = self._args(exprlist, bound)
        if not low <= len(args) <= high:
            raise CompileError(f"found no matching overload for '{name}'")
        return _call(name, impl, args)

    _dot_ident_arg = _ident_arg

    def _has(self, exprlist: Any, bound: frozenset[str]) -> Node:
        args = list(exprlist.children) if exprlist is not None else []
        target = unwrap(args[0]) if len(args) == 1 else None
        if not (isinstance(target, lark.Tree) and target.data == "member_dot"):
            raise CompileError("invalid argument to has() macro")
        obj_tree, name_token = target.children
        obj = self._node(obj_tree, bound)
        name = str(name_token)
        return lambda scope: isinstance(found := obj(scope), Mapping) and name in found

    def _literal(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        token = tree.children[0]
        assert isinstance(token, lark.Token)
        value = _literal(token)
        return lambda scope: value

    def _paren_expr(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        return self._node(tree.children[0], bound)

    def _list_lit(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        items = self._args(tree.children[0] if tree.children else None, bound)
        return lambda scope: [item(scope) for item in items]

    def _map_lit(self, tree: SyntaxTree, bound: frozenset[str]) -> Node:
        parts = self._args(tree.children[0] if tree.children else None, bound)
        pairs = list(zip(parts[0::2], parts[1::2], strict=True))

        def map_literal(scope: Scope) -> Any:
            result: dict[Any, Any] = {}
            for key_node, value_node in pairs:
                key = key_node(scope)
                if key is UNKNOWN or isinstance(key, list | dict):
                    return UNKNOWN
                result[key] = value_node(scope)
            return result

        return map_literal


def _fold(name: str, items: list[Any], results: list[list[Any]]) -> Any:
    """Result of a comprehension macro, with CEL's error absorption for all/exists."""
    firsts = [result[0] for result in results]
    if name == "exists":
        if any(r is True for r in firsts):
            return True
        return False if all(r is False for r in firsts) else UNKNOWN
    if name == "all":
        if any(r is False for r in firsts):
            return False
        return True if all(r is True for r in firsts) else UNKNOWN
    if name == "exists_one":
        if any(not isinstance(r, bool) for r in firsts):
            return UNKNOWN
        return sum(1 for r in firsts if r) == 1
    if name == "filter":
        if any(not isinstance(r, bool) for r in firsts):
            return UNKNOWN
        return [item for item, keep in zip(items, firsts, strict=True) if keep]
    # map(x, expr) or map(x, predicate, expr)
    if len(results[0] if results else [0]) == 1:
        return firsts
    return [result[1] for result in results if result[0] is True]
