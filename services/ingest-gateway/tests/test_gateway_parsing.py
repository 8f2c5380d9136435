"""Pure parsing, signature and mapping rules of Postmark, generic producers and credentials (no
database, no HTTP). Stripe's: test_gateway_parsing_stripe.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from ingest_gateway import generic
from ingest_gateway.auth import check_basic_auth, check_bearer
from ingest_gateway.http_body import GatewayHTTPError
from ingest_gateway.postmark import parse_inbound
from pydantic import SecretStr
from shared_events import TicketResolved

POSTMARK_SAMPLE: dict[str, Any] = {
    "FromName": "Ada Lovelace",
    "MessageStream": "inbound",
    "From": "Ada@Example.com",
    "FromFull": {"Email": "Ada@Example.com", "Name": "Ada Lovelace", "MailboxHash": ""},
    "To": '"Support" <support+abc@inbound.postmarkapp.com>',
    "ToFull": [
        {"Email": "support+abc@inbound.postmarkapp.com", "Name": "Support", "MailboxHash": "abc"}
    ],
    "Cc": "",
    "CcFull": [],
    "OriginalRecipient": "support+abc@inbound.postmarkapp.com",
    "Subject": "Refund for order ord_1001",
    "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
    "ReplyTo": "",
    "MailboxHash": "abc",
    "Date": "Fri, 1 Aug 2014 16:45:32 -04:00",
    "TextBody": "Hello, I was charged twice.",
    "HtmlBody": "<p>Hello, I was charged twice.</p>",
    "StrippedTextReply": "",
    "Tag": "",
    "Headers": [
        {"Name": "Message-ID", "Value": "<CAF=abc@mail.example.com>"},
        {"Name": "X-Spam-Status", "Value": "No"},
    ],
    "Attachments": [],
}


# -- Postmark ---------------------------------------------------------------------------------


def test_postmark_sample_is_parsed() -> None:
    email = parse_inbound(POSTMARK_SAMPLE)
    assert email.provider_message_id == "73e6d360-66eb-11e1-8e72-a8904824019b"
    assert email.sender_email == "ada@example.com"
    assert email.subject == "Refund for order ord_1001"
    assert email.body_text == "Hello, I was charged twice."
    assert email.received_at.isoformat() == "2014-08-01T20:45:32+00:00"
    assert email.thread_key == "<CAF=abc@mail.example.com>"
    assert email.in_reply_to is None


def test_postmark_reply_joins_the_thread_root() -> None:
    reply = dict(POSTMARK_SAMPLE, MessageID="second")
    reply["Headers"] = [
        {"Name": "Message-ID", "Value": "<r2@mail.example.com>"},
        {"Name": "In-Reply-To", "Value": "<out1@nerve>"},
        {"Name": "References", "Value": "<CAF=abc@mail.example.com> <out1@nerve>"},
    ]
    email = parse_inbound(reply)
    assert email.thread_key == "<CAF=abc@mail.example.com>"
    assert email.in_reply_to == "<out1@nerve>"


def test_postmark_from_without_fromfull() -> None:
    payload = {k: v for k, v in POSTMARK_SAMPLE.items() if k != "FromFull"}
    payload["From"] = "Grace Hopper <GRACE@example.com>"
    assert parse_inbound(payload).sender_email == "grace@example.com"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"MessageID": None}, "MessageID"),
        ({"MessageID": ""}, "MessageID"),
        ({"FromFull": {"Email": "not an address"}}, "FromFull.Email"),
        ({"FromFull": None, "From": ""}, "From"),
        ({"Headers": "nope"}, "Headers"),
    ],
)
def test_postmark_schema_violations_name_the_field(change: dict[str, Any], field: str) -> None:
    payload = {**POSTMARK_SAMPLE, **change}
    payload = {k: v for k, v in payload.items() if v is not None or k != "MessageID"}
    with pytest.raises(GatewayHTTPError) as caught:
        parse_inbound(payload)
    assert caught.value.status_code == 422
    assert field in caught.value.detail


# -- generic producers -------------------------------------------------------------------------


def _source() -> generic.GenericSource:
    return generic.GenericSource(
        secret=SecretStr("generic-unit-secret-0123456789"),
        event="ticket/resolved",
        id_path="ticket.id",
        fields={"ticket_id": "ticket.id", "customer_id": "ticket.customer"},
        constants={"resolved_by": "helpdesk"},
    )


def test_generic_mapping_builds_the_catalog_event() -> None:
    external_id, event = generic.map_payload(
        "helpdesk", _source(), {"ticket": {"id": "tkt_9", "customer": "cust_002"}}
    )
    assert external_id == "tkt_9"
    assert event == TicketResolved(
        ticket_id="tkt_9", customer_id="cust_002", resolved_by="helpdesk"
    )


def test_generic_mapping_names_the_missing_payload_path() -> None:
    with pytest.raises(GatewayHTTPError) as caught:
        generic.map_payload("helpdesk", _source(), {"ticket": {"id": "tkt_9"}})
    assert caught.value.status_code == 422
    assert "ticket.customer" in caught.value.detail


def test_generic_hmac() -> None:
    source = _source()
    body = b'{"ticket": {"id": "1"}}'
    generic.verify(source, body, generic.sign("generic-unit-secret-0123456789", body))
    for bad in (None, "sha256=00", generic.sign("another-secret-0123456789", body)):
        with pytest.raises(GatewayHTTPError) as caught:
            generic.verify(source, body, bad)
        assert caught.value.status_code == 401


def test_generic_config_refuses_unknown_events_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown catalog event"):
        generic.GenericSource(secret=SecretStr("x" * 20), event="nope/never", id_path="id")
    with pytest.raises(ValueError, match="no field"):
        generic.validate_sources(
            {
                "helpdesk": generic.GenericSource(
                    secret=SecretStr("x" * 20),
                    event="ticket/resolved",
                    id_path="id",
                    fields={"colour": "x"},
                )
            }
        )


# -- credentials ------------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth() -> None:
    check_basic_auth(_basic("pm", "pw"), username="pm", password="pw")
    for header in (None, "", "Bearer x", _basic("pm", "wrong"), _basic("other", "pw"), "Basic !!"):
        with pytest.raises(GatewayHTTPError) as caught:
            check_basic_auth(header, username="pm", password="pw")
        assert caught.value.status_code == 401


def test_bearer() -> None:
    check_bearer("Bearer tok", token="tok")
    for header in (None, "tok", "Bearer other", "Basic tok"):
        with pytest.raises(GatewayHTTPError):
            check_bearer(header, token="tok")
