"""Every catalog event round-trips; bad data fails loudly, naming the field."""

from __future__ import annotations

import re
from typing import Any

import inngest
import pytest
from shared_events import CATALOG, EventDataError, EventModel, model_for
from shared_events.catalog import InngestFunctionFailed

SENDABLE = sorted(name for name, model in CATALOG.items() if model.sendable)


def test_every_event_has_a_sample_and_a_versioned_name(
    samples: dict[str, dict[str, Any]],
) -> None:
    assert set(samples) == set(CATALOG)
    for name, model in CATALOG.items():
        vendor, _, rest = name.partition("/")
        assert vendor and rest and " " not in name, name
        assert model.name == name and model.version >= 1


@pytest.mark.parametrize("name", SENDABLE)
def test_round_trip_through_to_event_and_from_event(
    name: str, samples: dict[str, dict[str, Any]]
) -> None:
    model = CATALOG[name]
    original = model.from_data(samples[name])
    event = original.to_event(id=f"test-{name}")
    assert isinstance(event, inngest.Event)
    assert (event.name, event.id) == (name, f"test-{name}")
    # What the engine hands back: the JSON data of the sent event.
    received = inngest.Event(name=event.name, data=event.data, id="01JENGINEID")
    assert model.from_event(received) == original
    assert model.from_data(original.to_wire(id="x")["data"]) == original


def test_engine_keys_in_data_are_ignored(samples: dict[str, dict[str, Any]]) -> None:
    data = samples["ticket/resolved"] | {"_inngest": {"source_fn_id": "x"}}
    parsed = model_for("ticket/resolved").from_data(data)
    assert parsed.to_data() == samples["ticket/resolved"]


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("customer/email.received", {"customer_id": None}, "data.customer_id"),
        ("refund/approval.requested", {"amount_cents": "lots"}, "data.amount_cents"),
        ("refund/approval.requested", {"risk_score": 3}, "data.risk_score"),
        ("escalation/decision.made", {"decision": "maybe"}, "data.decision"),
        ("customer/health_check.requested", {"check_date": "tomorrow"}, "data.check_date"),
    ],
)
def test_bad_data_raises_non_retriable_naming_the_field(
    name: str, change: dict[str, Any], field: str, samples: dict[str, dict[str, Any]]
) -> None:
    model = CATALOG[name]
    event = inngest.Event(name=name, data=samples[name] | change, id="e1")
    with pytest.raises(
        inngest.NonRetriableError, match=re.escape(f"invalid {name} event: {field}")
    ):
        model.from_event(event)
    with pytest.raises(EventDataError, match=re.escape(field)):
        model.from_data(samples[name] | change)


def test_missing_field_is_named(samples: dict[str, dict[str, Any]]) -> None:
    data = dict(samples["support/draft.created"])
    del data["draft_id"]
    with pytest.raises(inngest.NonRetriableError, match=re.escape("data.draft_id: Field required")):
        CATALOG["support/draft.created"].from_event(
            inngest.Event(name="support/draft.created", data=data)
        )


def test_wrong_event_name_is_refused(samples: dict[str, dict[str, Any]]) -> None:
    event = inngest.Event(name="ticket/resolved", data=samples["ticket/resolved"])
    with pytest.raises(
        inngest.NonRetriableError, match=re.escape("expected a support/draft.created event")
    ):
        CATALOG["support/draft.created"].from_event(event)


def test_an_idempotency_id_is_mandatory(samples: dict[str, dict[str, Any]]) -> None:
    model = CATALOG["ticket/resolved"].from_data(samples["ticket/resolved"])
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="idempotency id is required"):
            model.to_event(id=bad)


def test_engine_events_parse_but_cannot_be_sent(samples: dict[str, dict[str, Any]]) -> None:
    failed = InngestFunctionFailed.from_event(
        inngest.Event(name="inngest/function.failed", data=samples["inngest/function.failed"])
    )
    assert failed.error_summary == "RuntimeError: boom"
    with pytest.raises(ValueError, match="emitted by the engine"):
        failed.to_event(id="x")


def test_triggers_name_the_event() -> None:
    trigger = CATALOG["ticket/resolved"].trigger()
    assert trigger.event == "ticket/resolved" and trigger.expression is None
    filtered = CATALOG["risk/profile.updated"].trigger(if_exp="event.data.level == 'high'")
    assert filtered.expression == "event.data.level == 'high'"


def test_unknown_event_names_list_the_catalog() -> None:
    with pytest.raises(KeyError, match=r"unknown event 'nope/x'.*ticket/resolved"):
        model_for("nope/x")


BODY_LIKE = {"body", "text", "html", "email", "address", "subject", "content", "card"}


@pytest.mark.parametrize("model", list(CATALOG.values()), ids=list(CATALOG))
def test_events_carry_ids_not_bodies(model: type[EventModel]) -> None:
    """Claim check: no catalog payload has a field for message bodies or personal data."""
    assert not set(model.model_fields) & BODY_LIKE
