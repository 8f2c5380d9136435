"""Pure parsing, signature and mapping rules of Stripe webhooks (no database, no HTTP)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import stripe
from ingest_gateway.http_body import GatewayHTTPError
from ingest_gateway.stripe_webhooks import parse_event, to_catalog_event, verify_signature
from shared_events import StripeChargeDisputeCreated, StripeChargeRefundFailed

SECRET = "whsec_unit_0123456789abcdef"


def _stripe_header(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


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
