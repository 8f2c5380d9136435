"""Inngest expression semantics (infra/devserver/docs/expressions.md#semantics), evaluated by
devserver.expressions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from devserver.expressions import ExpressionError, compile_expression, interpolate
from hypothesis import given
from hypothesis import strategies as st

EVENT: dict[str, Any] = {
    "name": "shop/order.created",
    "id": "01J000",
    "ts": 1_700_000_000_000,
    "data": {
        "customer": "cus_A",
        "tier": "enterprise",
        "amount": 20,
        "ratio": 0.5,
        "tags": ["vip", "eu"],
        "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}],
        "nested": {"flag": True, "empty": ""},
        "nothing": None,
        "text": "Hello World",
    },
}


def ev(source: str, event: dict[str, Any] | None = None, **extra: Any) -> Any:
    return compile_expression(source).evaluate({"event": event or EVENT, **extra})


def match(source: str, event: dict[str, Any] | None = None, **extra: Any) -> bool:
    return compile_expression(source).matches({"event": event or EVENT, **extra})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # JSON numbers are doubles; int literals compare numerically with them
        ("event.data.amount == 20", True),
        ("event.data.amount == 20.0", True),
        ("event.data.amount > 19 && event.data.amount < 21.5", True),
        ("event.data.ratio == 0.5", True),
        ("1 == 1.0", True),
        ("2 > 1.5", True),
        # single- and double-quoted strings (the on_failure trigger uses single quotes)
        ("event.data.customer == 'cus_A'", True),
        ('event.data.customer == "cus_A"', True),
        ("event.name == 'shop/order.created'", True),
        # missing attributes never error
        ("event.data.missing == null", True),
        ("event.data.missing == 'x'", False),
        ("event.data.missing == 0", False),
        ("event.data.missing != null", False),
        ("event.data.missing != 'x'", True),
        ("event.data.missing < 5", True),
        ("event.data.missing <= 5", True),
        ("event.data.missing > 5", False),
        ("event.data.missing >= 5", False),
        ("5 > event.data.missing", True),
        ("size(event.data.missing) == 0", True),
        ("event.data.missing.deeper.still == null", True),
        ("event.data.missing.startsWith('a')", False),
        ("lowercase(event.data.missing) == ''", False),
        ("event.nope.exists(x, x == 1)", False),
        # null against values
        ("event.data.nothing == null", True),
        ("event.data.nothing == 0", False),
        ("event.data.nothing != 0", True),
        ("event.data.nothing < 1", True),
        ("event.data.nothing > -1", True),
        ("event.data.nothing < 'a'", True),
        # mixed-type + concatenates like Go's %v%v
        ("'a' + 1 == 'a1'", True),
        ("'n=' + event.data.amount == 'n=20'", True),
        ("'r=' + event.data.ratio == 'r=0.5'", True),
        ("'x' + true == 'xtrue'", True),
        ("1 + 2 == 3", True),
        ("'a' + 'b' == 'ab'", True),
        ("[1] + [2] == [1, 2]", True),
        ("event.data.missing + 'tail' == 'tail'", True),
        # truthiness of && / || / ! (JS-like: the deciding operand is the value)
        ("event.data.customer && event.data.tier", "enterprise"),
        ("event.data.nested.empty || 'fallback'", "fallback"),
        ("event.data.nested.empty && 'never'", ""),
        ("!event.data.nested.empty", True),
        ("!event.data.customer", False),
        ("!event.data.missing", False),
        ("event.data.missing || true", True),
        ("event.data.missing && true", False),
        ("true && event.data.nested.flag", True),
        ("false || event.data.amount", 20.0),
        ("event.data.missing || event.data.customer", "cus_A"),
        ("event.data.tier ? true : false", True),
        # standard functions and macros
        ("event.data.text.contains('World')", True),
        ("event.data.text.startsWith('Hell')", True),
        ("event.data.text.endsWith('World')", True),
        ("event.data.text.matches('^H[a-z]+ W')", True),
        ("matches(event.data.text, 'xyz')", False),
        ("size(event.data.tags) == 2", True),
        ("event.data.tags.size() == 2", True),
        ("size(event.data.text) == 11", True),
        ("'vip' in event.data.tags", True),
        ("'us' in event.data.tags", False),
        ("'tier' in event.data", True),
        ("has(event.data.tier)", True),
        ("has(event.data.missing)", False),
        ("has(event.data.missing.deeper)", False),
        ("event.data.items.exists(i, i.sku == 'b')", True),
        ("event.data.items.all(i, i.qty >= 1)", True),
        ("event.data.items.all(i, i.qty >= 2)", False),
        ("event.data.items.exists_one(i, i.qty == 2)", True),
        ("event.data.items.map(i, i.qty) == [2, 1]", True),
        ("event.data.items.filter(i, i.qty > 1).size() == 1", True),
        ("event.data.items[0].sku == 'a'", True),
        ("event.data.items[5].sku == 'a'", False),
        ("event.data['customer'] == 'cus_A'", True),
        ("int(event.data.amount) == 20", True),
        ("double(2) == 2.0", True),
        ("string(7) == '7'", True),
        # custom functions
        ("lowercase('AbC') == 'abc'", True),
        ("uppercase(event.data.tier) == 'ENTERPRISE'", True),
        ("b64decode('aGVsbG8=') == 'hello'", True),
        ('json_parse(\'{"a": {"b": 3}}\').a.b == 3', True),
        ("json_parse('not json').a == null", True),
        ("date('2024-01-02T03:04:05Z') < date('2024-01-03T00:00:00Z')", True),
        ("date(1700000000) == date('2023-11-14T22:13:20Z')", True),
        ("now() > date('2020-01-01T00:00:00Z')", True),
        ("now_plus('1h') > now()", True),
        ("now_minus('1d') < now()", True),
        ("date(event.ts) < now()", True),
        # ternary, arithmetic
        ("event.data.tier == 'enterprise' ? 120 : 0", 120),
        ("event.data.tier == 'free' ? 120 : 0", 0),
        ("7 / 2 == 3 && 7 % 3 == 1 && -7 / 2 == -3", True),
        ("1 / 0 == 1", False),
        ("event.data.amount * 2.0 == 40", True),
    ],
)
def test_expression_semantics(source: str, expected: Any) -> None:
    assert ev(source) == expected


def test_overall_unknown_is_false_and_does_not_match() -> None:
    assert ev("event.data.missing") is False
    assert not match("event.data.missing")
    assert not match("event.data.customer")  # a string is not `true`
    assert match("event.data.nested.flag")


def test_type_errors_do_not_raise_and_do_not_match() -> None:
    assert not match("event.data.customer < 5")
    assert not match("event.data.tags.contains(1)")
    assert not match("int('abc') == 0")


def test_async_variable_for_waits_and_cancels() -> None:
    candidate = {"name": "shop/order.cancelled", "data": {"customer": "cus_A"}}
    expression = compile_expression("async.data.customer == event.data.customer")
    assert expression.matches({"event": EVENT, "async": candidate})
    assert not expression.matches({"event": EVENT, "async": {"data": {}}})


def test_on_failure_trigger_expression() -> None:
    failed = {"name": "inngest/function.failed", "data": {"function_id": "app-fn"}}
    assert match("event.data.function_id == 'app-fn'", failed)
    assert not match("event.data.function_id == 'app-other'", failed)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("event.data.x ==", "invalid expression"),
        ("foo.bar == 1", "undeclared reference to 'foo'"),
        ("nosuchfn(event)", "undeclared reference to 'nosuchfn'"),
        ("event.data.x.nosuchmethod()", "undeclared reference to 'nosuchmethod'"),
        ("size(1, 2)", "no matching overload"),
        ("has(event)", "has()"),
        ("", "empty"),
    ],
)
def test_compile_errors_name_the_problem(source: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        compile_expression(source)


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("async.data.id == event.data.id", True),
        ("async.data.id == 'x' && (async.data.n > 1 || !(async.data.b == true))", True),
        ("async.data.items[0] == 'x'", True),
        ("'a' in async.data.tags", True),
        ("int(async.data.n) == 1 && double(async.data.m) > 1.0 && uint(async.data.k) == 1u", True),
        ("async.data.n + 1 > 2", True),
        ("async.ts > date('2024-01-01T00:00:00Z')", True),
        ("has(async.data.id)", False),
        ("async.data.tags.exists(t, t == 'x')", False),
        ("async.data.text.contains('x')", False),
        ("size(async.data.tags) > 0", False),
        ("lowercase(async.data.x) == 'a'", False),
    ],
)
def test_restrictive_policy_for_cancel_if(source: str, allowed: bool) -> None:
    compile_expression(source)  # always valid without the policy
    if allowed:
        compile_expression(source, restrictive=True)
    else:
        with pytest.raises(ExpressionError, match="disallowed"):
            compile_expression(source, restrictive=True)


def test_interpolate_replaces_event_references_with_literals() -> None:
    source = "async.data.customer == event.data.customer && async.data.amount >= event.data.amount"
    result = interpolate(source, event=EVENT)
    assert "event." not in result
    assert result == "async.data.customer == 'cus_A' && async.data.amount >= 20.0"
    compiled = compile_expression(result)
    assert compiled.references == frozenset({"async"})
    assert compiled.matches({"async": {"data": {"customer": "cus_A", "amount": 25}}})
    assert not compiled.matches({"async": {"data": {"customer": "cus_B", "amount": 25}}})


def test_interpolate_folds_conditions_decided_by_the_trigger_event() -> None:
    never = interpolate("event.data.tier == 'free' && async.data.x == 1", event=EVENT)
    assert never == "false"
    always = interpolate("event.data.tier == 'enterprise' || async.data.x == 1", event=EVENT)
    assert always == "true"
    assert interpolate("async.data.x == 1", event=EVENT) == "async.data.x == 1"


def test_interpolate_keeps_missing_fields_so_they_never_match() -> None:
    result = interpolate("async.data.id == event.data.missing", event=EVENT)
    assert not compile_expression(result).matches({"async": {"data": {"id": "x"}}})
    assert not compile_expression(result).matches({"async": {"data": {}}, "event": {}})


def test_interpolate_lists_strings_with_quotes_and_macro_bodies() -> None:
    event = {"data": {"ids": ["a", "b"], "quote": 'it\'s "q"\n', "n": -3}}
    result = interpolate(
        "async.data.id in event.data.ids && async.data.q == event.data.quote"
        " && async.data.list.exists(x, x == event.data.n)",
        event=event,
    )
    assert "event." not in result
    compiled = compile_expression(result)
    assert compiled.matches({"async": {"data": {"id": "b", "q": 'it\'s "q"\n', "list": [-3]}}})
    assert not compiled.matches({"async": {"data": {"id": "c", "q": 'it\'s "q"\n', "list": [-3]}}})


def test_compiled_expressions_are_cached() -> None:
    assert compile_expression("event.data.a == 1") is compile_expression("event.data.a == 1")


# --- properties ---

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=12),
)


@given(value=json_scalars)
def test_value_round_trips_through_equality_and_interpolation(value: Any) -> None:
    event = {"data": {"v": value}}
    assert match("event.data.v == event.data.v", event)
    interpolated = interpolate("async.data.v == event.data.v", event=event)
    assert "event." not in interpolated
    assert compile_expression(interpolated).matches({"async": {"data": {"v": value}}})


@given(a=st.integers(-(10**9), 10**9), b=st.integers(-(10**9), 10**9))
def test_numbers_compare_numerically_across_int_and_double(a: int, b: int) -> None:
    event = {"data": {"a": a, "b": float(b)}}
    assert match(f"event.data.a < {b}", event) == (a < b)
    assert match(f"event.data.a == {b}", event) == (a == b)
    assert match(f"{a} >= event.data.b", event) == (a >= b)


@given(name=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), number=json_scalars)
def test_missing_fields_never_raise(name: str, number: Any) -> None:
    literal = "null" if number is None else repr(number) if isinstance(number, str) else None
    operand = literal or str(number).lower()
    if isinstance(number, float) and (math.isinf(number) or "e" in operand):
        return
    for operator in ("==", "!=", "<", "<=", ">", ">="):
        result = ev(f"event.data.zz_{name} {operator} {operand}", {"data": {}})
        assert isinstance(result, bool)


def test_now_functions_use_the_current_time() -> None:
    before = datetime.now(UTC)
    stamp = ev("now_plus('90s')")
    assert before + timedelta(seconds=89) < stamp < datetime.now(UTC) + timedelta(seconds=91)
