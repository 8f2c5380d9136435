"""Hostile but authenticated Postmark deliveries: every concrete probe that once answered 500
answers 2xx/4xx (JSON structure, NUL and lone surrogates field by field, absurd dates, long ids
and headers). The other senders' probes: test_gateway_hostile_senders.py; what is stored:
test_gateway_hostile_input.py. SQLite, and Postgres with TEST_DATABASE_URL.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from gateway_hostile import (
    LONE,
    Probe,
    mail,
    nested,
    postmark,
    postmark_raw,
    probe,
    send_probe,
    unique,
    with_header,
)

PROBES: list[Probe] = [
    # -- JSON structure -------------------------------------------------------------------------
    probe("postmark-nested-1000", lambda: postmark_raw(nested(1000)), 400),
    probe("postmark-nested-100000", lambda: postmark_raw(nested(100_000)), 400),
    probe(
        "postmark-nested-1000-in-field",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "Attachments": ' + nested(1000) + "}"),
        400,
    ),
    probe(
        "postmark-nested-60-in-field",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "Attachments": ' + nested(60) + "}"),
        400,
    ),
    probe(
        "postmark-5000-digit-number",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "Spam": ' + "9" * 5000 + "}"),
        400,
    ),
    probe(
        "postmark-nan-literal",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "SpamScore": NaN}'),
        400,
    ),
    probe(
        "postmark-float-1e400",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "SpamScore": 1e400}'),
        400,
    ),
    # -- NUL and lone surrogates, field by field -----------------------------------------------
    *[
        probe(
            f"postmark-nul-in-{field}", lambda field=field: postmark(mail(**{field: "a\x00b"})), 200
        )
        for field in ("TextBody", "Subject", "FromName", "To", "Date", "StrippedTextReply")
    ],
    *[
        probe(
            f"postmark-surrogate-in-{field}",
            lambda field=field: postmark(mail(**{field: f"a{LONE}b"})),
            200,
        )
        for field in ("TextBody", "Subject", "FromName", "To", "Date", "HtmlBody")
    ],
    probe("postmark-nul-in-MessageID", lambda: postmark(mail(MessageID=unique("a\x00"))), 200),
    probe("postmark-surrogate-in-MessageID", lambda: postmark(mail(MessageID=unique(LONE))), 200),
    probe(
        "postmark-nul-in-FromFull.Email",
        lambda: postmark(mail(FromFull={"Email": "a\x00b@example.com", "Name": "x"})),
        200,
        422,
    ),
    probe(
        "postmark-surrogate-in-FromFull.Name",
        lambda: postmark(mail(FromFull={"Email": "ada@example.com", "Name": LONE})),
        200,
    ),
    probe(
        "postmark-surrogate-in-ToFull.Email",
        lambda: postmark(mail(ToFull=[{"Email": f"s{LONE}@example.com"}])),
        200,
        422,
    ),
    probe(
        "postmark-nul-in-In-Reply-To", lambda: postmark(with_header("In-Reply-To", "<a\x00b>")), 200
    ),
    probe(
        "postmark-surrogate-in-References",
        lambda: postmark(with_header("References", f"<{LONE}@x>")),
        200,
    ),
    probe(
        "postmark-nul-in-header-name",
        lambda: postmark(with_header("X-\x00", "v")),
        200,
    ),
    probe(
        "postmark-surrogate-in-key",
        lambda: postmark({**mail(), f"X{LONE}": "v"}),
        200,
    ),
    probe(
        "postmark-new-sender-with-nul-name",
        lambda: postmark(
            mail(
                From=f"{unique()}@example.org",
                FromFull=None,
                FromName="N\x00 " + LONE,
            )
        ),
        200,
    ),
    # -- dates -----------------------------------------------------------------------------------
    *[
        probe(f"postmark-date-{label}", lambda value=value: postmark(mail(Date=value)), 200, 422)
        for label, value in (
            ("year-9999", "Fri, 31 Dec 9999 23:59:59 +0000"),
            ("year-9999-west", "Fri, 31 Dec 9999 23:59:59 -12:00"),
            ("year-1-east", "Mon, 1 Jan 0001 00:00:00 +14:00"),
            ("year-1", "Mon, 1 Jan 0001 00:00:00 +0000"),
            ("year-99999", "Mon, 1 Jan 99999 00:00:00 +0000"),
            ("garbage", "not a date at all"),
            ("offset-9999", "Thu, 5 Nov 2026 09:12:01 +9999"),
            ("hour-99", "Thu, 5 Nov 2026 99:12:01 +0000"),
            ("year-1800", "Thu, 5 Nov 1800 09:12:01 +0000"),
        )
    ],
    # -- long ids and headers ----------------------------------------------------------------------
    *[
        probe(
            f"postmark-messageid-{n}",
            lambda n=n: postmark(mail(MessageID=unique()[:16] + "m" * n)),
            200,
        )
        for n in (185, 200, 290, 300, 500, 980)
    ],
    probe("postmark-messageid-5000", lambda: postmark(mail(MessageID="m" * 5000)), 200, 422),
    probe(
        "postmark-in-reply-to-301",
        lambda: postmark(with_header("In-Reply-To", "<" + "r" * 299 + ">")),
        200,
    ),
    probe(
        "postmark-in-reply-to-5000",
        lambda: postmark(with_header("In-Reply-To", "<" + "r" * 5000 + ">")),
        200,
    ),
    probe(
        "postmark-references-5000",
        lambda: postmark(with_header("References", "<" + "f" * 5000 + ">")),
        200,
    ),
    probe(
        "postmark-references-many",
        lambda: postmark(with_header("References", " ".join(f"<{i}@x>" for i in range(2000)))),
        200,
    ),
    probe(
        "postmark-message-id-header-400",
        lambda: postmark(with_header("Message-ID", "<" + "h" * 400 + ">")),
        200,
    ),
    probe("postmark-subject-10000", lambda: postmark(mail(Subject="s" * 10_000)), 200),
    probe(
        "postmark-fromname-1000", lambda: postmark(mail(FromName="n" * 1000, FromFull=None)), 200
    ),
    probe("postmark-to-1000", lambda: postmark(mail(To="t" * 1000, ToFull=[])), 200),
    probe(
        "postmark-toaddress-400",
        lambda: postmark(mail(ToFull=[{"Email": "a" * 390 + "@x.io"}])),
        422,
    ),
    probe("postmark-mailboxhash-1000", lambda: postmark(mail(MailboxHash="h" * 1000)), 200),
    probe(
        "postmark-header-name-not-string",
        lambda: postmark(mail(Headers=[{"Name": 1, "Value": 2}])),
        422,
    ),
]


@pytest.mark.parametrize("hostile", PROBES, ids=[p.name for p in PROBES])
async def test_authenticated_hostile_probe_is_never_a_server_error(
    offline_gateway: httpx.AsyncClient, hostile: Probe, database_url: str, waiting_request: Any
) -> None:
    await send_probe(offline_gateway, hostile, database_url, waiting_request)
