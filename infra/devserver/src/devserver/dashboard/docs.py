"""The documentation the MCP doc tools (`list_docs`, `grep_docs`, `read_doc`) serve.

The project's own docs: `README.md` and `docs/` of the project root, plus any folder named in
`DEVSERVER_DOCS_DIRS`. Paths are shown relative to the project root (extra folders outside it by
their absolute path); `read_doc` refuses anything that is not one of the listed files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC_SUFFIXES = frozenset({".md", ".txt", ".rst", ".markdown"})
MAX_DOC_CHARS = 200_000


class DocError(ValueError):
    """A doc request that cannot be served (unknown path, bad pattern)."""


@dataclass(frozen=True)
class DocIndex:
    root: Path
    extra_dirs: tuple[Path, ...] = ()

    def _display(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_posix()

    def files(self) -> dict[str, Path]:
        """display path -> file, sorted."""
        found: dict[str, Path] = {}
        readme = self.root / "README.md"
        if readme.is_file():
            found[self._display(readme)] = readme
        for folder in (self.root / "docs", *self.extra_dirs):
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix.lower() in DOC_SUFFIXES:
                    found[self._display(path)] = path
        return dict(sorted(found.items()))

    def list_docs(self) -> dict[str, Any]:
        categories: dict[str, list[dict[str, Any]]] = {}
        for display, path in self.files().items():
            category = display.split("/", 1)[0] if "/" in display else "root"
            categories.setdefault(category, []).append(
                {"path": display, "title": _title(path), "size": path.stat().st_size}
            )
        return {
            "categories": [
                {"name": name, "count": len(docs), "docs": docs}
                for name, docs in categories.items()
            ],
            "total": sum(len(d) for d in categories.values()),
        }

    def read_doc(self, path: str) -> dict[str, Any]:
        files = self.files()
        wanted = path.strip().lstrip("./") if not path.startswith("/") else path.strip()
        target = files.get(wanted)
        if target is None:
            raise DocError(
                f"unknown doc {path!r}; list_docs names the readable ones "
                f"({len(files)} files, e.g. {', '.join(list(files)[:5])})"
            )
        text = target.read_text(encoding="utf-8", errors="replace")
        return {
            "path": wanted,
            "content": text[:MAX_DOC_CHARS],
            "truncated": len(text) > MAX_DOC_CHARS,
        }

    def grep_docs(self, pattern: str, limit: int = 10) -> dict[str, Any]:
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise DocError(f"invalid regular expression {pattern!r}: {exc}") from None
        limit = max(1, min(int(limit), 200))
        matches: list[dict[str, Any]] = []
        for display, path in self.files().items():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, start=1):
                if regex.search(line):
                    matches.append(
                        {
                            "path": display,
                            "line": number,
                            "text": line.strip()[:300],
                            "context": "\n".join(lines[max(0, number - 3) : number + 2])[:1200],
                        }
                    )
                    if len(matches) >= limit:
                        return {"pattern": pattern, "matches": matches, "truncated": True}
        return {"pattern": pattern, "matches": matches, "truncated": False}


def _title(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    return line.strip().lstrip("#").strip()[:120]
    except OSError:
        return path.name
    return path.name
