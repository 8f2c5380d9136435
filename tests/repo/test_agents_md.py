"""AGENTS.md stays true: every repository path and make target it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "AGENTS.md"


TOP_LEVEL = ("libs/", "services/", "infra/", "tests/", "docs/", "scripts/", "bench/")


def named_paths(text: str) -> set[str]:
    """Backticked tokens that start with a top-level folder (event names like
    `ticket/resolved` do not)."""
    tokens = re.findall(r"`([^`\s]+)`", text)
    return {token.rstrip("/") for token in tokens if token.startswith(TOP_LEVEL)}


def test_every_path_agents_md_names_exists() -> None:
    paths = named_paths(AGENTS.read_text())
    assert len(paths) >= 10, paths  # the file names its layout; an empty parse is a broken test
    missing = sorted(path for path in paths if not (ROOT / path).exists())
    assert missing == []


def test_every_make_target_agents_md_names_exists() -> None:
    text = AGENTS.read_text()
    targets = set(re.findall(r"`make ([a-z0-9-]+)", text))
    assert {"test", "lint", "new-service"} <= targets
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, flags=re.MULTILINE))
    assert sorted(targets - defined) == []
