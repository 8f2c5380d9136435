"""Value semantics of Inngest expressions (CEL with Inngest's leniencies).

Inngest runs Google CEL with runtime decorators (pkg/expressions/unknown.go, exprenv/overloads.go)
that make it lenient: missing attributes are "unknown" instead of errors, operators accept mixed
types, `+` concatenates what it cannot add. This module holds those rules as plain functions over
Python values; `devserver.expressions` compiles the CEL syntax tree into calls to them.

Values: None (null), bool, int, float (JSON numbers), str, bytes, list, dict, datetime (timestamp),
timedelta (duration) and UNKNOWN. Evaluation errors (bad operand types, division by zero, index
out of range) are represented by UNKNOWN as well: the Go decorator treats error and unknown
arguments identically, and both make a whole expression false.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
# strconv.FormatFloat(f, 'g', -1, 64) switches to exponent form at 1e+06 ("shortest" => 6).
_GO_EXPONENT_THRESHOLD: Final = 6


class Unknown:
    """A missing attribute or a failed sub-evaluation."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Final = Unknown()


class Uint(int):
    """CEL `uint` (literals like `1u`); a distinct type for equality-of-types purposes."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def from_json(value: Any) -> Any:
    """JSON numbers are doubles (Go unmarshals into float64): applied when reading variables."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def truthy(value: Any) -> bool:
    """JS-like truthiness of the Go `evalTruthyLogical` wrapper (lists and maps are truthy)."""
    if value is None or value is UNKNOWN or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str | int | float):
        return bool(value)
    return True


# --- formatting (Go's %v, used by mixed-type `+` and by key expressions) -------------------------


def go_float(value: float) -> str:
    """Go's `%v` of a float64 (strconv 'g', shortest): exponent form when exp < -4 or exp >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    decimal_exponent = len(digits) - 1 + int(exponent)
    prefix = "-" if sign else ""
    if decimal_exponent < -4 or decimal_exponent >= _GO_EXPONENT_THRESHOLD:
        tail = f".{digits[1:]}" if len(digits) > 1 else ""
        exp_sign = "+" if decimal_exponent >= 0 else "-"
        return f"{prefix}{digits[0]}{tail}e{exp_sign}{abs(decimal_exponent):02d}"
    if decimal_exponent >= len(digits) - 1:
        return prefix + digits + "0" * (decimal_exponent - len(digits) + 1)
    if decimal_exponent >= 0:
        return f"{prefix}{digits[: decimal_exponent + 1]}.{digits[decimal_exponent + 1 :]}"
    return f"{prefix}0.{'0' * (-decimal_exponent - 1)}{digits}"


def go_format(value: Any) -> str:
    """Go `%v` of a CEL value's native form."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted((go_format(k), go_format(v)) for k, v in value.items())
        return "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return str(value)


# --- equality and ordering ---


def equals(left: Any, right: Any) -> Any:
    """`==`: unknown equals only null; null equals only null; numbers compare across int/double."""
    if left is UNKNOWN or right is UNKNOWN:
        return left is None or right is None
    return _deep_equal(left, right)


def not_equals(left: Any, right: Any) -> Any:
    if left is UNKNOWN or right is UNKNOWN:
        return not (left is None or right is None)
    return not _deep_equal(left, right)


def _deep_equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            _deep_equal(from_json(a), from_json(b)) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict) and isinstance(right, dict):
        if len(left) != len(right):
            return False
        return all(
            key in right and _deep_equal(from_json(value), from_json(right[key]))
            for key, value in left.items()
        )
    if type(left) is type(right) or (isinstance(left, str) and isinstance(right, str)):
        return bool(left == right)
    return False


_ZERO_BY_TYPE: Final[dict[type, Any]] = {int: 0, float: 0.0, Uint: Uint(0), str: ""}


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Operands made comparable, or None when CEL has no ordering overload for them."""
    if left is None or right is None:
        other = right if left is None else left
        if other is None or type(other) not in _ZERO_BY_TYPE:
            return None
        zero = _ZERO_BY_TYPE[type(other)]
        return (zero, right) if left is None else (left, zero)
    if is_number(left) and is_number(right):
        return left, right
    if isinstance(left, bool) and isinstance(right, bool):
        return left, right
    for kind in (str, bytes, datetime, timedelta):
        if isinstance(left, kind) and isinstance(right, kind):
            return left, right
    return None


def order(operator: str, left: Any, right: Any) -> Any:
    """`<`, `<=`, `>`, `>=`. Unknown is less than anything (order-sensitive, as in unknown.go)."""
    if left is UNKNOWN or right is UNKNOWN:
        left_unknown = left is UNKNOWN
        return left_unknown if operator in ("<", "<=") else not left_unknown
    pair = _comparable(left, right)
    if pair is None:
        return UNKNOWN
    a, b = pair
    if operator == "<":
        return bool(a < b)
    if operator == "<=":
        return bool(a <= b)
    if operator == ">":
        return bool(a > b)
    return bool(a >= b)


def contained_in(item: Any, container: Any) -> Any:
    if item is UNKNOWN or container is UNKNOWN:
        return False
    if isinstance(container, list):
        return any(_deep_equal(item, from_json(element)) for element in container)
    if isinstance(container, dict):
        if item in container:
            return True
        return is_number(item) and any(
            is_number(key) and key == item for key in container if not isinstance(key, bool)
        )
    return UNKNOWN


# --- arithmetic ---


def checked_int(value: int, *, unsigned: bool) -> Any:
    if unsigned:
        return Uint(value) if 0 <= value <= UINT64_MAX else UNKNOWN
    return value if INT64_MIN <= value <= INT64_MAX else UNKNOWN


def _same_numeric_kind(left: Any, right: Any) -> bool:
    def kind(value: Any) -> str:
        return "uint" if isinstance(value, Uint) else "int" if isinstance(value, int) else "double"

    return is_number(left) and is_number(right) and kind(left) == kind(right)


def add(left: Any, right: Any) -> Any:
    """`+`: CEL addition; when the operand types have no `+` overload, `%v%v` concatenation."""
    if left is UNKNOWN or right is UNKNOWN:
        known = right if left is UNKNOWN else left
        return False if known is UNKNOWN else known
    result = _native_add(left, right)
    if result is UNKNOWN:
        return go_format(left) + go_format(right)
    return result


def _native_add(left: Any, right: Any) -> Any:
    if _same_numeric_kind(left, right):
        if isinstance(left, float):
            return left + right
        return checked_int(left + right, unsigned=isinstance(left, Uint))
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, bytes) and isinstance(right, bytes):
        return left + right
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    if isinstance(left, datetime) and isinstance(right, timedelta):
        return left + right
    if isinstance(left, timedelta) and isinstance(right, datetime | timedelta):
        return left + right
    return UNKNOWN


def arithmetic(operator: str, left: Any, right: Any) -> Any:
    """`-`, `*`, `/`, `%` (same numeric kind only; timestamp/duration subtraction)."""
    if left is UNKNOWN or right is UNKNOWN:
        return False
    if operator == "-":
        if isinstance(left, datetime) and isinstance(right, datetime | timedelta):
            return left - right
        if isinstance(left, timedelta) and isinstance(right, timedelta):
            return left - right
    if not _same_numeric_kind(left, right):
        return UNKNOWN
    if isinstance(left, float):
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        if operator == "/":
            if right == 0:
                return math.copysign(math.inf, left) if left else math.nan
            return left / right
        return UNKNOWN  # CEL has no double modulo
    unsigned = isinstance(left, Uint)
    if operator == "-":
        return checked_int(left - right, unsigned=unsigned)
    if operator == "*":
        return checked_int(left * right, unsigned=unsigned)
    if right == 0:
        return UNKNOWN
    quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)
    if operator == "/":
        return checked_int(quotient, unsigned=unsigned)
    return checked_int(left - right * quotient, unsigned=unsigned)  # Go: sign of the dividend


def negate(value: Any) -> Any:
    if value is UNKNOWN:
        return False
    if isinstance(value, float):
        return -value
    if isinstance(value, int) and not isinstance(value, bool | Uint):
        return checked_int(-value, unsigned=False)
    if isinstance(value, timedelta):
        return -value
    return UNKNOWN
