"""Pure parsing, signature and mapping rules (no database, no HTTP)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import stripe
from ingest_gateway import generic
from ingest_gateway.auth import check_basic_auth, check_bearer
from ingest_gateway.http_body import GatewayHTTPError
from ingest_gateway.postmark import parse_inbound
from ingest_gateway.stripe_webhooks import parse_event, to_catalog_event, verify_signature
from pydantic import SecretStr
from shared_events import StripeChargeDisputeCreated, StripeChargeRefundFailed, TicketResolved

SECRET = "whsec_unit_0123456789abcdef"

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


def _stripe_header(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


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


# -- Stripe -----------------------------------------------------------------------------------


def test_stripe_signature_made_by_the_library_verifies() -> None:
    body = json.dumps({"id": "evt_1", "object": "event"})
    verify_signature(body.encode(), _stripe_header(body), SECRET, 300)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("", 401),
        ("t=123,v1=deadbeef", 401),
        ("garbage", 401),
    ],
)
def test_stripe_bad_signatures_are_401(header: str | None, status: int) -> None:
    with pytest.raises(GatewayHTTPError) as caught:
        verify_signature(b"{}", header, SECRET, 300)
    assert caught.value.status_code == status


def test_stripe_signature_with_another_secret_is_401() -> None:
    body = "{}"
    with pytest.raises(GatewayHTTPError) as caught:
        verify_signature(body.encode(), _stripe_header(body, "whsec_other"), SECRET, 300)
    assert caught.value.status_code == 401


def test_stripe_stale_timestamp_is_400() -> None:
    body = "{}"
    stale = _stripe_header(body, timestamp=int(time.time()) - 301)
    with pytest.raises(GatewayHTTPError) as caught:
        verify_signature(body.encode(), stale, SECRET, 300)
    assert caught.value.status_code == 400
    assert "stale" in caught.value.detail


def _refund_event(status: str = "failed", type_: str = "charge.refund.updated") -> dict[str, Any]:
    return {
        "id": "evt_1RefundFailed",
        "object": "event",
        "type": type_,
        "created": 1_700_000_000,
        "livemode": False,
        "data": {
            "object": {
                "id": "re_123",
                "object": "refund",
                "amount": 1999,
                "charge": "ch_seed_1001",
                "currency": "usd",
                "status": status,
                "failure_reason": "expired_or_canceled_card",
                "metadata": {},
            }
        },
    }


def test_failed_refund_maps_to_refund_failed_event() -> None:
    delivery = parse_event(_refund_event())
    event = to_catalog_event(delivery, "cust_001")
    assert isinstance(event, StripeChargeRefundFailed)
    assert event.charge_id == "ch_seed_1001"
    assert event.refund_id == "re_123"
    assert event.amount_cents == 1999
    assert event.failure_reason == "expired_or_canceled_card"
    assert event.stripe_event_id == "evt_1RefundFailed"


def test_refund_update_that_is_not_a_failure_publishes_nothing() -> None:
    delivery = parse_event(_refund_event(status="succeeded"))
    assert delivery.mapped
    assert to_catalog_event(delivery, None) is None


def test_dispute_maps_to_dispute_event() -> None:
    payload = {
        "id": "evt_dispute",
        "object": "event",
        "type": "charge.dispute.created",
        "data": {
            "object": {
                "id": "dp_1",
                "object": "dispute",
                "amount": 5000,
                "charge": "ch_x",
                "currency": "eur",
                "reason": "fraudulent",
            }
        },
    }
    event = to_catalog_event(parse_event(payload), None)
    assert isinstance(event, StripeChargeDisputeCreated)
    assert (event.dispute_id, event.charge_id, event.reason) == ("dp_1", "ch_x", "fraudulent")


def test_unknown_stripe_type_is_not_mapped() -> None:
    delivery = parse_event(
        {"id": "evt_x", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    )
    assert not delivery.mapped
    assert to_catalog_event(delivery, None) is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}, "id"),
        ({"id": "not-evt", "type": "charge.refunded", "data": {"object": {}}}, "id"),
        ({"id": "evt_1", "type": "charge.refunded"}, "data"),
        (
            {"id": "evt_1", "type": "charge.dispute.created", "data": {"object": {"id": "dp"}}},
            "data.object.charge",
        ),
        (
            {
                "id": "evt_1",
                "type": "charge.refunded",
                "data": {"object": {"id": "ch", "amount_refunded": -5, "currency": "usd"}},
            },
            "data.object.amount_refunded",
        ),
    ],
)
def test_stripe_schema_violations_name_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(GatewayHTTPError) as caught:
        parse_event(payload)
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
