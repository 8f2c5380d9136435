"""What the request log may say about a path or a query string."""

from __future__ import annotations

import pytest
from service_kit.redact import REDACTED, redact_path, redact_query

TOKEN = "eyJraW5kIjoicmVmdW5kIn0.Zx1Yw2.abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"


@pytest.mark.parametrize(
    ("template", "params", "logged"),
    [
        ("/decisions/{token}", {"token": TOKEN}, f"/decisions/{REDACTED}"),
        ("/api/tickets/{ticket_id}/resolve", {"ticket_id": "tkt_1"}, "/api/tickets/tkt_1/resolve"),
        ("/webhooks/generic/{source}", {"source": "helpdesk"}, "/webhooks/generic/helpdesk"),
        ("/keys/{api_key}", {"api_key": "k1"}, f"/keys/{REDACTED}"),
        ("/files/{path:path}", {"path": "a/" + "x" * 60}, f"/files/a/{REDACTED}"),
    ],
)
def test_matched_route_logs_its_template_with_secret_parameters_redacted(
    template: str, params: dict[str, str], logged: str
) -> None:
    path = template  # the raw path is not used once the route is known
    assert redact_path(path, template=template, params=params) == logged


def test_unmatched_path_redacts_after_secret_prefixes_and_long_segments() -> None:
    prefixes = ("/decisions/",)
    assert (
        redact_path(f"/decisions/{TOKEN}/x", secret_prefixes=prefixes) == f"/decisions/{REDACTED}"
    )
    assert redact_path(f"/nowhere/{TOKEN}") == f"/nowhere/{REDACTED}"
    assert redact_path("/nowhere/short") == "/nowhere/short"


def test_query_values_of_secret_names_are_redacted() -> None:
    logged = redact_query(f"fnId=f1&stepId=s&token={TOKEN}&API_KEY=k&sig=abc&probe=trust".encode())
    assert TOKEN not in logged and "=k&" not in logged and "abc" not in logged
    assert "fnId=f1" in logged and "probe=trust" in logged
    assert redact_query(b"") == ""
