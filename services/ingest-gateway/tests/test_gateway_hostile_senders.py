"""Hostile but authenticated Stripe events, generic producer payloads, reviewer decisions and
admin API calls: every concrete probe that once answered 500 answers 2xx/4xx (deep nesting,
huge numbers, NUL and lone surrogates, long ids, odd signatures). The Postmark probes:
test_gateway_hostile_postmark.py. SQLite, and Postgres with TEST_DATABASE_URL.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from gateway_hostile import (
    LONE,
    Probe,
    admin,
    decision,
    generic,
    generic_raw,
    nested,
    probe,
    send_probe,
    stripe_event,
    stripe_raw,
    unique,
)

PROBES: list[Probe] = [
    # -- Stripe ------------------------------------------------------------------------------------
    probe(
        "stripe-float-1e400-in-metadata",
        lambda: stripe_raw(
            json.dumps({"id": unique("evt_"), "type": "x", "data": {"object": {}}})[:-2]
            + ', "m": -1e400}}'
        ),
        400,
    ),
    probe("stripe-nested-1000", lambda: stripe_raw(nested(1000)), 400),
    probe(
        "stripe-nested-1000-in-metadata",
        lambda: stripe_raw(
            json.dumps(
                {
                    "id": unique("evt_"),
                    "type": "charge.refund.updated",
                    "data": {"object": {"id": "re_1"}},
                }
            )[:-2]
            + ', "metadata": '
            + nested(1000)
            + "}}}"
        ),
        400,
    ),
    probe("stripe-5000-digit-amount", lambda: stripe_raw('{"amount": ' + "9" * 5000 + "}"), 400),
    probe("stripe-event-id-255", lambda: stripe_event("evt_" + "e" * 251), 200),
    probe("stripe-event-id-200", lambda: stripe_event("evt_" + unique() + "e" * 164), 200),
    probe("stripe-event-id-300", lambda: stripe_event("evt_" + "e" * 296), 422),
    probe("stripe-object-id-255", lambda: stripe_event(id="re_" + "o" * 252), 200),
    probe("stripe-charge-id-300", lambda: stripe_event(charge="ch_" + "c" * 297), 200),
    probe(
        "stripe-nul-everywhere",
        lambda: stripe_event(failure_reason="a\x00", status="failed", metadata={"k\x00": "v\x00"}),
        200,
    ),
    probe(
        "stripe-surrogates",
        lambda: stripe_event(failure_reason=LONE, metadata={"customer_id": LONE}),
        200,
    ),
    probe("stripe-nul-in-charge", lambda: stripe_event(charge="ch_\x00"), 200),
    probe("stripe-amount-2^70", lambda: stripe_event(amount=2**70), 400),
    probe(
        "stripe-ignored-type-with-nul",
        lambda: stripe_raw(
            json.dumps({"id": unique("evt_"), "type": "x\x00" + LONE, "data": {"object": {}}})
        ),
        200,
    ),
    probe(
        "stripe-signature-garbage-timestamp",
        lambda: stripe_raw("{}", signature="t=abc,v1=00"),
        400,
        401,
    ),
    probe(
        "stripe-signature-huge-timestamp",
        lambda: stripe_raw("{}", signature="t=" + "9" * 40 + ",v1=00"),
        400,
        401,
    ),
    probe(
        "stripe-signature-5000-digit-timestamp",
        lambda: stripe_raw("{}", signature="t=" + "9" * 5000 + ",v1=00"),
        400,
        401,
    ),
    probe(
        "stripe-signature-non-ascii",
        lambda: stripe_raw("{}", signature="t=1,v1=\u00e9".encode("latin-1")),
        400,
        401,
    ),
    # -- generic producers -------------------------------------------------------------------------
    probe("generic-nested-1000", lambda: generic_raw(nested(1000, "{}")), 400),
    probe(
        "generic-infinity",
        lambda: generic_raw('{"ticket": {"id": Infinity, "customer": "c"}}'),
        400,
    ),
    probe("generic-id-200", lambda: generic(unique() + "g" * 168), 200),
    probe("generic-id-300", lambda: generic("g" * 300), 200, 422),
    probe("generic-id-nul", lambda: generic(unique("t\x00")), 200),
    probe("generic-id-surrogate", lambda: generic(unique(LONE)), 200),
    probe(
        "generic-id-5000-digits",
        lambda: generic_raw('{"ticket": {"id": ' + "7" * 5000 + ', "customer": "c"}}'),
        400,
    ),
    probe("generic-customer-nul", lambda: generic(unique("t"), "c\x00"), 200, 422),
    probe("generic-customer-long", lambda: generic(unique("t"), "c" * 1000), 200, 422),
    # -- reviewer decisions and the admin API ------------------------------------------------------
    probe(
        "decision-json-edit-nul",
        lambda: decision(
            "escalation",
            json.dumps({"decision": "edit", "edited_text": "a\x00b"}).encode(),
            "application/json",
        ),
        200,
    ),
    probe(
        "decision-json-edit-surrogate",
        lambda: decision(
            "escalation",
            json.dumps({"decision": "edit", "edited_text": LONE}).encode(),
            "application/json",
        ),
        200,
    ),
    probe(
        "decision-form-edit-nul",
        lambda: decision(
            "escalation", b"decision=edit&edited_text=a%00b", "application/x-www-form-urlencoded"
        ),
        200,
    ),
    probe(
        "decision-form-edit-encoded-surrogate",
        lambda: decision(
            "escalation",
            b"decision=edit&edited_text=%ED%A0%80",
            "application/x-www-form-urlencoded",
        ),
        200,
    ),
    probe(
        "decision-nested-json",
        lambda: decision("refund", nested(1000).encode(), "application/json"),
        400,
    ),
    probe(
        "decision-token-with-nul",
        lambda: {
            "url": "/decisions/ab%00cd",
            "content": b"decision=approve",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        401,
    ),
    probe("admin-ticket-id-nul", lambda: admin("tkt_%00"), 404),
    probe("admin-ticket-id-long", lambda: admin("t" * 1000), 404),
    probe("admin-ticket-id-surrogate", lambda: admin("tkt_%ED%A0%80"), 404),
    probe("admin-nested-body", lambda: admin("tkt_x", nested(1000)), 400),
]


@pytest.mark.parametrize("hostile", PROBES, ids=[p.name for p in PROBES])
async def test_authenticated_hostile_probe_is_never_a_server_error(
    offline_gateway: httpx.AsyncClient, hostile: Probe, database_url: str, waiting_request: Any
) -> None:
    await send_probe(offline_gateway, hostile, database_url, waiting_request)
