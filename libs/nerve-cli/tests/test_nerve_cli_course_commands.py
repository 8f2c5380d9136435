"""`nerve send` with the course's hand-sent shapes and a re-sent id, and `nerve catalog` in full."""

from __future__ import annotations

import json

from nerve_cli.main import app
from shared_events import CATALOG
from typer.testing import CliRunner

runner = CliRunner()


def test_send_accepts_the_course_shapes_and_posts_them_as_written(fake_engine) -> None:
    for name, data in (
        ("customer/email.received", {"email_text": "How do I add two seats?", "customer_id": "c1"}),
        ("refund/approval.decided", {"approved": True, "customer_id": "cust_002"}),
    ):
        result = runner.invoke(
            app, ["send", name, "--data", json.dumps(data), "--engine-url", fake_engine.base_url]
        )
        assert result.exit_code == 0, result.output
        sent = fake_engine.events[-1]
        assert sent["name"] == name
        assert {k: v for k, v in sent["data"].items() if v is not None} == data


def test_send_refuses_data_that_fits_no_shape_naming_each(fake_engine) -> None:
    result = runner.invoke(
        app,
        [
            "send",
            "refund/approval.decided",
            "--data",
            '{"approved": true}',
            "--engine-url",
            fake_engine.base_url,
        ],
    )
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "as the catalog shape" in message and "data.decision: Field required" in message
    assert "as the by-hand variant" in message and "give request_id or customer_id" in message
    assert fake_engine.events == []


def test_send_of_an_id_already_received_says_the_engine_deduplicated_it(fake_engine) -> None:
    args = [
        "send",
        "ticket/resolved",
        "-f",
        "ticket_id=t1",
        "-f",
        "customer_id=cust_001",
        "-f",
        "resolved_by=ops",
        "--id",
        "resolved-t1",
        "--engine-url",
        fake_engine.base_url,
    ]
    first = runner.invoke(app, args, env={"COLUMNS": "300"})
    second = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.output.startswith("sent ticket/resolved id=resolved-t1")
    original = fake_engine.events[0]["internal_id"]
    assert second.output.startswith("duplicate: an event with id=resolved-t1")
    assert f"engine_id={original}" in second.output and "deduplicated" in second.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert json.loads(as_json.stdout)["event"]["duplicate_of"] == original


def test_catalog_shows_whole_descriptions_literal_values_and_variants() -> None:
    listing = runner.invoke(app, ["catalog"], env={"COLUMNS": "100"})
    assert listing.exit_code == 0
    flat = " ".join(listing.output.replace("│", " ").split())
    # the last words of a long docstring are there: nothing was cut
    assert "Event id: `health-{customer_id}-{date}` so two invocations the same day fan" in flat
    assert "variant 'inline'" in flat and "variant 'by-hand'" in flat
    assert len(CATALOG) <= flat.count("/")

    fields = runner.invoke(app, ["catalog", "support/draft.created"], env={"COLUMNS": "200"})
    assert "'reply' | 'proactive' | 'follow_up' | 'refund_failed'" in fields.output
    assert "the inbound message answered" in fields.output
