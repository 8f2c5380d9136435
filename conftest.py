"""Repository-wide test hygiene.

Every package's tests run in one pytest session, so a test that changes the process environment
(an in-process CLI reading `.env`, a settings test) would change what every later test sees, e.g.
which engine `INNGEST_BASE_URL` names. Each test gets the environment back as it found it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_process_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)
