"""Test-only helpers for Nerve's suites: local stand-ins for the outer edge (Slack, SMTP).

A dev-only workspace member: the root `dev` dependency group installs it, no service depends on
it, so the Docker images (`uv sync --no-dev --package MEMBER`) never contain it.
"""
