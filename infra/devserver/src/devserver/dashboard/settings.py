"""Dashboard / MCP settings, read from the environment (see infra/devserver/MOUNTS.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_REDACT_FIELDS = (
    "password",
    "secret",
    "token",
    "api_key",
    "authorization",
    "email",
    "body",
)


def find_project_root(start: Path | None = None) -> Path:
    """The first ancestor holding a uv workspace pyproject (else the start folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text(errors="ignore"):
            return folder
    return here


@dataclass(frozen=True)
class DashboardSettings:
    nerve_database_url: str | None = None
    redact_fields: frozenset[str] = frozenset(DEFAULT_REDACT_FIELDS)
    project_root: Path = field(default_factory=find_project_root)
    extra_docs_dirs: tuple[Path, ...] = ()
    refresh_ms: int = 1500

    @classmethod
    def from_env(cls) -> DashboardSettings:
        redact = os.environ.get("DEVSERVER_REDACT_FIELDS")
        fields = (
            frozenset(f.strip().lower() for f in redact.split(",") if f.strip())
            if redact is not None
            else frozenset(DEFAULT_REDACT_FIELDS)
        )
        docs = os.environ.get("DEVSERVER_DOCS_DIRS", "")
        return cls(
            nerve_database_url=os.environ.get("NERVE_DATABASE_URL") or None,
            redact_fields=fields,
            extra_docs_dirs=tuple(Path(p) for p in docs.split(os.pathsep) if p.strip()),
        )
