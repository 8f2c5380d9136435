"""The schema check: committed schemas match the code; breaking changes need a version bump.

Every test that changes anything works on a temporary copy of the committed schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field
from shared_events import CATALOG, EventModel
from shared_events.__main__ import main
from shared_events.catalog import TicketResolved
from shared_events.schemas import (
    DEFAULT_SCHEMA_DIR,
    BreakingSchemaChange,
    check_schemas,
    current_docs,
    write_schemas,
)


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(DEFAULT_SCHEMA_DIR, target)
    return target


def _catalog_with(model: type[EventModel]) -> dict[str, type[EventModel]]:
    return {**CATALOG, model.name: model}


# Variants of `ticket/resolved` (v1 fields: ticket_id, customer_id, resolved_by).
class ResolvedRenamedField(EventModel):
    name: ClassVar[str] = "ticket/resolved"
    ticket_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    resolver: str = Field(min_length=1)  # was resolved_by


class ResolvedRetyped(EventModel):
    name: ClassVar[str] = "ticket/resolved"
    ticket_id: int  # was a string
    customer_id: str = Field(min_length=1)
    resolved_by: str = Field(min_length=1)


class ResolvedNewRequiredField(TicketResolved):
    resolution: str


class ResolvedNewOptionalField(TicketResolved):
    resolution: str | None = None


class ResolvedRenamedV2(ResolvedRenamedField):
    version: ClassVar[int] = 2


def test_committed_schemas_match_the_code() -> None:
    report = check_schemas()
    assert report.ok, report.lines()
    names = {doc.name for doc in current_docs()}
    assert set(CATALOG) <= names
    assert "risk-worker-score-refund-risk.output" in names


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (ResolvedRenamedField, "field 'resolved_by' removed or renamed"),
        (ResolvedRetyped, "field 'ticket_id' retyped"),
        (ResolvedNewRequiredField, "new required field 'resolution'"),
    ],
)
def test_breaking_change_without_bump_fails_and_is_not_written(
    schema_copy: Path, model: type[EventModel], problem: str
) -> None:
    docs = current_docs(catalog=_catalog_with(model))
    report = check_schemas(schema_copy, docs)
    assert not report.ok
    [line] = report.breaking
    assert line.startswith("ticket/resolved v1:") and problem in line
    before = sorted(p.read_text() for p in schema_copy.rglob("*.json"))
    with pytest.raises(BreakingSchemaChange, match=problem):
        write_schemas(schema_copy, docs)
    assert sorted(p.read_text() for p in schema_copy.rglob("*.json")) == before


def test_breaking_change_with_a_version_bump_is_accepted(schema_copy: Path) -> None:
    docs = current_docs(catalog=_catalog_with(ResolvedRenamedV2))
    report = check_schemas(schema_copy, docs)
    assert report.breaking == []
    assert report.stale == ["ticket/resolved v2: no committed schema"]
    written = write_schemas(schema_copy, docs)
    assert [p.name for p in written] == ["ticket__resolved.v2.json"]
    assert check_schemas(schema_copy, docs).ok
    # v1 stays as history.
    assert (schema_copy / "events" / "ticket__resolved.v1.json").exists()


def test_compatible_change_is_stale_until_regenerated(schema_copy: Path) -> None:
    docs = current_docs(catalog=_catalog_with(ResolvedNewOptionalField))
    report = check_schemas(schema_copy, docs)
    assert report.breaking == []
    assert report.stale == ["ticket/resolved v1: compatible change not committed"]
    write_schemas(schema_copy, docs)
    assert check_schemas(schema_copy, docs).ok


def test_removed_event_is_breaking(schema_copy: Path) -> None:
    catalog = {name: model for name, model in CATALOG.items() if name != "ticket/resolved"}
    report = check_schemas(schema_copy, current_docs(catalog=catalog))
    assert report.breaking == ["ticket/resolved: event removed from the catalog (committed v1)"]


def test_python_dash_m_check_passes_on_the_committed_schemas() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared_events", "schemas", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "schemas up to date" in result.stdout


def test_cli_check_fails_on_a_breaking_edit_and_refuses_to_write(
    schema_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The committed v1 of ticket/resolved knew a field the code no longer has: the code
    # removed it without bumping the version.
    path = schema_copy / "events" / "ticket__resolved.v1.json"
    document = json.loads(path.read_text())
    document["schema"]["properties"]["legacy_reason"] = {"type": "string"}
    path.write_text(json.dumps(document))

    assert main(["schemas", "--check", "--dir", str(schema_copy)]) == 1
    assert "BREAKING: ticket/resolved v1: field 'legacy_reason' removed or renamed" in (
        capsys.readouterr().err
    )
    assert main(["schemas", "--dir", str(schema_copy)]) == 1
    assert "refusing to write" in capsys.readouterr().err
    assert json.loads(path.read_text()) == document  # untouched
