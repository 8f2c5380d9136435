"""Conformance with the Go server's expression decorators (pkg/expressions/unknown.go): unknown
operands, null coercion for ordering, JS-like && / || and macros over missing fields."""

from __future__ import annotations

from typing import Any

import pytest
from devserver.expressions import compile_expression


def data(**values: Any) -> dict[str, Any]:
    return {"event": {"data": values}}


NO_DATA = data()

CASES: list[tuple[str, dict[str, Any], Any]] = [
    # unknown operands of == / !=
    ('event.data.missing == "foo"', NO_DATA, False),
    ("event.data.missing == null", NO_DATA, True),
    ("event.data.missing == 0", NO_DATA, False),
    ("event.data.a == event.data.b", NO_DATA, False),
    ('event.data.missing != "foo"', NO_DATA, True),
    ("event.data.missing != null", NO_DATA, False),
    ("event.data.missing != 0", NO_DATA, True),
    ('event.data.missing != ""', NO_DATA, True),
    # ordering is direction-sensitive: unknown is less than anything
    ("event.data.missing < 5", NO_DATA, True),
    ("event.data.missing <= 5", NO_DATA, True),
    ("5 < event.data.missing", NO_DATA, False),
    ("5 <= event.data.missing", NO_DATA, False),
    ("event.data.n > event.data.missing", data(n=2), True),
    ("event.data.missing > 5", NO_DATA, False),
    ("event.data.missing >= 5", NO_DATA, False),
    ("5 > event.data.missing", NO_DATA, True),
    ("5 >= event.data.missing", NO_DATA, True),
    # + keeps the known operand
    ("event.data.name + event.data.missing", data(name="hello"), "hello"),
    ("event.data.missing + event.data.name", data(name="hello"), "hello"),
    ("event.data.a + event.data.b", NO_DATA, False),
    # size / in on unknown
    ("size(event.data.missing)", NO_DATA, 0),
    ("size(event.data.missing) > 0", NO_DATA, False),
    ("size(event.data.missing) == 0", NO_DATA, True),
    ('event.data.missing in ["a", "b", "c"]', NO_DATA, False),
    # null against a typed value: == / != fixed, ordering uses the other type's zero value
    ('null == "foo"', NO_DATA, False),
    ('"foo" == null', NO_DATA, False),
    ('null != "foo"', NO_DATA, True),
    ('"foo" != null', NO_DATA, True),
    ('null < "foo"', NO_DATA, True),
    ('"foo" < null', NO_DATA, False),
    ("null < uint(5)", NO_DATA, True),
    ("null < 5", NO_DATA, True),
    ("5 < null", NO_DATA, False),
    ("null > 0", NO_DATA, False),
    ("5 > null", NO_DATA, True),
    ("null <= 0", NO_DATA, True),
    ("null >= 1", NO_DATA, False),
    ("null < 0.5", NO_DATA, True),
    ("event.data.float > null", data(float=3.141), True),
    ("event.data.n > null", data(n=8), True),
    ("event.data.float <= null", data(float=3.141), False),
    # || returns the first truthy operand (or the last); && the first falsy (or the last)
    ("event.data.a || event.data.b", data(a="first", b="second"), "first"),
    ("event.data.a || event.data.b", data(a="", b="second"), "second"),
    ("event.data.missing || event.data.b", data(b="found"), "found"),
    ("event.data.a || event.data.missing", data(a="found"), "found"),
    ("event.data.a || event.data.b", NO_DATA, False),
    ("event.data.zero || event.data.name", data(zero=0, name="hi"), "hi"),
    ("null || event.data.b", data(b="fallback"), "fallback"),
    ("event.data.f || false", data(f=3.14), 3.14),
    ("event.data.f || event.data.b", data(f=0.0, b="yes"), "yes"),
    ("false || event.data.list", data(list=["a"]), ["a"]),
    ("uint(5) || false", NO_DATA, 5),
    ("uint(0) || event.data.b", data(b="yes"), "yes"),
    ("event.data.x || event.data.y", data(x=False, y=True), True),
    ("event.data.x || event.data.y", data(x=False, y=False), False),
    ("event.data.a && event.data.b", data(a="first", b="second"), "second"),
    ("event.data.a && event.data.b", data(a="", b="second"), ""),
    ("event.data.a && event.data.b", data(a="first", b=""), ""),
    ("event.data.missing && event.data.b", data(b="second"), False),
    ("event.data.x && event.data.y", data(x=True, y=False), False),
    ("event.data.x && event.data.y", data(x=True, y=True), True),
    # macros and methods over real and missing fields
    ('event.data.tags.exists(x, x == "a")', data(tags=["a", "b", "c"]), True),
    ('event.data.tags.exists(x, x == "z")', data(tags=["a", "b", "c"]), False),
    ('event.data.tags.exists(x, x == "d" || x == "a")', data(tags=["a", "b", "c"]), True),
    ('event.nonexistent.exists(x, x == "a")', NO_DATA, False),
    ("event.data.nums.all(x, x > 0)", data(nums=[1, 2, 3]), True),
    ("event.data.nums.all(x, x > 1)", data(nums=[1, 2, 3]), False),
    ('event.data.some.unknown.contains("x")', NO_DATA, False),
    ('event.data.nonexistent in ["LOL", "Issue", "Epic"]', data(issue="Bug"), False),
    # other declared top-level variables, string escapes, conversions
    ("event['data'].foo != '' && event['data'].bar != true", data(foo="hi"), True),
    (
        "steps.first.foo == 'test' && steps.second.bar != true",
        {"steps": {"first": {"foo": "test"}}},
        True,
    ),
    ("int(response.status) == 200", {"response": {"status": "200"}}, True),
    ("event.data.name == action.first.result.name", data(name="no"), False),
    ("user.nonexistent.exists(x, x == 'a')", {}, False),
    ("event.data.title.matches('^[a-z\\\\d]{0,10}$')", data(title="nope"), True),
    ("event.data.title.matches('\\\\w')", data(title="nope"), True),
    ("'hello'.contains('llo')", {}, True),
    ("event.data.issue.field.another == 'another'", data(issue=None), False),
    (
        "event.data.test == true && event.data.issue.field.another != 'another'",
        data(test=True, issue=None),
        True,
    ),
    ("event.data.int > 3.141 && event.data.float <= 2", data(int=8, float=1.111), True),
    (
        "event.data.a == event.data.b",
        data(a={"eval": "ok", "num": 1.161}, b={"eval": "ok", "num": 1.161}),
        True,
    ),
    (
        "event.data.a == event.data.b",
        data(a={"eval": "ok", "num": 9}, b={"eval": "ok", "num": 1.161}),
        False,
    ),
    (
        "event.data.name + '-' + event.data.number + '-' + event.data.bool + '-'"
        " + event.data.missing",
        data(name="hi", number=9.1, bool=True),
        "hi-9.1-true-",
    ),
    (
        "json_parse(b64decode(event.data.encoded)).nested.data",
        data(encoded="eyJuZXN0ZWQiOnsiZGF0YSI6InllYSJ9fQ=="),
        "yea",
    ),
    ("5 + 4", {}, 9),
]


@pytest.mark.parametrize(("source", "variables", "expected"), CASES)
def test_matches_the_go_decorators(source: str, variables: dict[str, Any], expected: Any) -> None:
    result = compile_expression(source).evaluate(variables)
    assert result == expected
    assert isinstance(result, bool) == isinstance(expected, bool), "booleans stay booleans"


NARY = (
    'event.data.user.name == "alice" && event.data.user.role == "admin"'
    ' && event.data.user.plan == "pro"'
    " && (event.data.features.a || event.data.features.b || event.data.features.c)"
)


@pytest.mark.parametrize(
    ("user", "features", "truthy"),
    [
        (("alice", "admin", "pro"), {"c": "on"}, True),
        (("alice", "admin", "pro"), {"a": "on"}, True),
        (("alice", "admin", "pro"), {"b": "on"}, True),
        (("bob", "admin", "pro"), {"a": "on", "b": "on", "c": "on"}, False),
        (("alice", "user", "pro"), {"a": "on", "b": "on", "c": "on"}, False),
        (("alice", "admin", "free"), {"a": "on", "b": "on", "c": "on"}, False),
        (("alice", "admin", "pro"), {}, False),
    ],
)
def test_nary_or_inside_and(
    user: tuple[str, str, str], features: dict[str, Any], truthy: bool
) -> None:
    name, role, plan = user
    variables = data(user={"name": name, "role": role, "plan": plan}, features=features)
    result = compile_expression(NARY).evaluate(variables)
    assert (result is not False) == truthy
