"""Hypothesis strategies for the gateway's property tests: hostile text (NUL, lone surrogates,
long runs), JSON values, deep nesting, and each sender's payload with hostile values anywhere.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from hypothesis import strategies as st

# Any code point, lone surrogates and NUL included (hypothesis leaves surrogates out by default).
any_char = st.characters(exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(any_char, min_size=180, max_size=1200),
    st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "a\x00b", "\ud83d", "\u2028", "é" * 400]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int) -> str:
    """A placeholder `dumps` replaces with JSON nested `depth` deep (the client's own encoder
    would recurse too)."""
    return f"__deep_{depth}__"


nesting = st.one_of(json_values, st.integers(20, 3000).map(deep))
_DEEP = re.compile(r'"__deep_(\d+)__"')


def maybe(strategy: st.SearchStrategy[Any], default: Any) -> st.SearchStrategy[Any]:
    """Mostly the valid value, sometimes a hostile one, so both paths are exercised."""
    return st.one_of(st.just(default), strategy)


@st.composite
def postmark_payloads(draw: st.DrawFn) -> dict[str, Any]:
    message_id = draw(maybe(hostile_text, f"pm-{uuid.uuid4().hex}"))
    headers = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "Name": st.sampled_from(["Message-ID", "In-Reply-To", "References", "X-Odd"]),
                    "Value": hostile_text,
                }
            ),
            max_size=4,
        )
    )
    payload: dict[str, Any] = {
        "MessageID": message_id,
        "From": draw(maybe(hostile_text, "ada@example.com")),
        "FromName": draw(hostile_text),
        "FromFull": draw(
            maybe(
                st.fixed_dictionaries({"Email": hostile_text, "Name": hostile_text}),
                {"Email": "ada@example.com", "Name": "Ada"},
            )
        ),
        "To": draw(hostile_text),
        "Subject": draw(hostile_text),
        "Date": draw(
            maybe(
                st.one_of(
                    hostile_text,
                    st.builds(
                        "{} {} {:04d} {:02d}:00:00 {}".format,
                        st.integers(1, 31),
                        st.sampled_from(["Jan", "Dec"]),
                        st.integers(1, 9999),
                        st.integers(0, 30),
                        st.sampled_from(["+0000", "-12:00", "+14:00", "+9999"]),
                    ),
                ),
                "Thu, 5 Nov 2026 09:12:01 +0000",
            )
        ),
        "TextBody": draw(hostile_text),
        "Headers": headers,
    }
    extra = draw(nesting)
    if extra is not None:
        payload["Attachments"] = extra
    return payload


@st.composite
def stripe_events(draw: st.DrawFn) -> dict[str, Any]:
    event_id = "evt_" + draw(maybe(hostile_text, uuid.uuid4().hex))
    obj: dict[str, Any] = {
        "id": draw(maybe(hostile_text, f"re_{uuid.uuid4().hex[:14]}")),
        "object": "refund",
        "amount": draw(maybe(st.integers(-(2**70), 2**70), 1999)),
        "charge": draw(maybe(hostile_text, "ch_seed_1002")),
        "currency": draw(maybe(hostile_text, "usd")),
        "status": draw(maybe(hostile_text, "failed")),
        "failure_reason": draw(hostile_text),
        "metadata": draw(maybe(json_values, {})),
    }
    return {
        "id": event_id,
        "object": "event",
        "created": int(time.time()),
        "type": draw(
            st.one_of(
                st.sampled_from(
                    ["charge.refund.updated", "refund.failed", "charge.dispute.created"]
                ),
                hostile_text,
            )
        ),
        "data": {"object": obj, "extra": draw(nesting)},
    }


@st.composite
def generic_payloads(draw: st.DrawFn) -> dict[str, Any]:
    ticket_id = draw(
        st.one_of(
            st.just(f"t-{uuid.uuid4().hex}"),
            hostile_text.map(lambda text: f"t-{uuid.uuid4().hex}{text}"),
            st.integers(-(2**70), 2**70),
            json_values,
        )
    )
    return {"ticket": {"id": ticket_id, "customer": draw(maybe(hostile_text, "cust_004"))}}


def dumps(value: Any) -> bytes:
    # ensure_ascii escapes NUL and lone surrogates as \\uXXXX, as a JSON sender does.
    text = _DEEP.sub(
        lambda m: "[" * int(m.group(1)) + "1" + "]" * int(m.group(1)), json.dumps(value)
    )
    return text.encode()
