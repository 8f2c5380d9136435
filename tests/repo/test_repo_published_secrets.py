"""The committed list of published secret values matches the repository.

Production refuses every secret-looking value that appears in the tracked files (see
service_kit.published_secrets and scripts/published_secrets.py); the list it checks against
ships inside service-kit, so it must be regenerated whenever a commit adds or removes one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs a git checkout: the list is derived from the tracked files",
)
def test_published_secrets_list_is_in_step_with_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "published_secrets.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
