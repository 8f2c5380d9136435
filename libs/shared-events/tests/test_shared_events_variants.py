"""The course's hand-sent shapes as documented variants: parsing, schemas, the wait guard."""

from __future__ import annotations

import datetime

import pytest
from shared_events import (
    VARIANTS,
    CustomerEmailReceived,
    CustomerEmailReceivedInline,
    EventDataError,
    RefundApprovalDecided,
    RefundApprovalDecidedByHand,
    parse_any,
)
from shared_events.schemas import current_docs
from shared_events.steps import catalog_shape_guard


def test_the_catalog_shape_wins_and_each_variant_is_recognised() -> None:
    gateway = {
        "message_id": "msg_1",
        "provider_message_id": "pm-1",
        "customer_id": "cust_001",
        "customer_tier": "pro",
        "ticket_id": "tkt_1",
        "received_at": "2026-12-06T10:00:00Z",
    }
    assert isinstance(parse_any("customer/email.received", gateway), CustomerEmailReceived)
    inline = parse_any("customer/email.received", {"email_text": "Hi", "customer_id": "cust_001"})
    assert isinstance(inline, CustomerEmailReceivedInline) and inline.email_text == "Hi"
    by_customer = parse_any("refund/approval.decided", {"approved": True, "customer_id": "c"})
    by_request = parse_any("refund/approval.decided", {"approved": False, "request_id": "rfr_1"})
    assert isinstance(by_customer, RefundApprovalDecidedByHand)
    assert isinstance(by_request, RefundApprovalDecidedByHand)
    assert (by_request.request_id, by_request.approved) == ("rfr_1", False)


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("customer/email.received", {"customer_id": "c"}, "data.email_text: Field required"),
        ("customer/email.received", {"email_text": "", "customer_id": "c"}, "email_text"),
        ("refund/approval.decided", {"approved": True}, "give request_id or customer_id"),
    ],
)
def test_data_fitting_no_shape_names_what_each_shape_misses(
    name: str, data: dict[str, object], problem: str
) -> None:
    with pytest.raises(EventDataError) as raised:
        parse_any(name, data)
    assert problem in str(raised.value) and "as the catalog shape" in str(raised.value)


def test_every_variant_has_a_committed_schema_named_after_it() -> None:
    names = {doc.name for doc in current_docs()}
    for name, variants in VARIANTS.items():
        for variant in variants:
            assert variant.name == name and variant.variant
            assert f"{name}+{variant.variant}" in names


def test_a_gate_waiting_on_the_catalog_shape_is_not_resumed_by_a_hand_sent_one() -> None:
    guard = catalog_shape_guard(RefundApprovalDecided)
    assert guard is not None
    field = guard.removeprefix("async.data.").removesuffix(" != null")
    assert field in RefundApprovalDecided.model_fields
    assert field not in RefundApprovalDecidedByHand.model_fields
    decided = RefundApprovalDecided(
        request_id="rfr_1",
        approved=True,
        decision="approve",
        reviewer="r",
        approval_id="apr_1",
        decided_at=datetime.datetime.now(datetime.UTC),
    )
    assert decided.to_data()[field] is not None  # the gateway's decisions pass the guard
