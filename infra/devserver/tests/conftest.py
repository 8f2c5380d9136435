"""Fixtures shared by every devserver suite (flow/ and dashboard/ inherit them)."""

# The engine fixture, re-exported (not `pytest_plugins`: pytest refuses that in a non-root
# conftest when the whole repository is collected). flow/ and dashboard/ inherit it.
from devserver.testing import inngest_engine  # noqa: F401
