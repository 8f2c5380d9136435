"""docs/architecture.md's generated event graph matches the catalog and the services' functions.

The section is regenerated from the code (scripts/architecture_graph.py, in a fresh process, as
a developer runs it) and compared with the committed text.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "architecture_graph.py"


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_committed_graph_matches_the_code() -> None:
    result = generate("--check")
    assert result.returncode == 0, (
        f"{result.stderr.strip()}\ndocs/architecture.md has drifted: "
        "run `uv run python scripts/architecture_graph.py --write`"
    )


def test_the_graph_links_each_function_to_its_source() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("<!-- BEGIN GENERATED", 1)[1].split("<!-- END GENERATED -->", 1)[0]
    # The walk-through's hops point at the files that hold them; the links are checked to
    # resolve by test_docs_standalone.py.
    assert "[`handle-customer-email`](../services/support-worker/src/" in section
    assert "[`score-refund-risk`](../services/risk-worker/src/" in section
    assert "svc_support_worker -.->|step.invoke| fn_risk_worker__score_refund_risk" in section
