"""The repository's docs stand alone: nothing points outside it, and every cited section exists.

- No tracked file names a path on someone's machine (an absolute home, root or work folder, or a
  sibling checkout reached through a parent folder's `shared`).
- Section signs (`§`) cite a linked document; the old unnumbered "protocol doc" is gone.
- Every `infra/devserver/docs/<page>.md#<anchor>` reference, and every relative link in a tracked
  Markdown file, names a file that exists and a heading that exists in it.

Failures name `file:line` so the fix is one jump away.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# An absolute path into a machine's home, root or work folders (`.../functions/work/flow` in a URL
# path is not one: the folder name must not follow a word, a dot or a slash).
MACHINE_PATH = re.compile(r"(?<![\w.}/\-])/(?:work|home|root|Users)/|[A-Za-z]:\\Users\\")
SIBLING_CHECKOUT = re.compile(r"\.\./(?:\.\./)*shared\b")
# A section sign must sit on a line that also links somewhere (a URL, a Markdown link or a file).
SECTION_SIGN = re.compile(r"§\s*\d")
LINKED = re.compile(r"\]\(|\]\[|://|\.md\b")
UNLINKED_PROTOCOL_DOC = re.compile(r"\bprotocol\s+(?:doc\s+)?§", re.IGNORECASE)
DOCS_REFERENCE = re.compile(r"infra/devserver/docs/([\w.-]+\.md)(?:#([\w-]+))?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a text file; nothing for binary files or files deleted but still listed."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    if b"\0" in raw:
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    yield from enumerate(text.splitlines(), start=1)


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    in_code = False
    for _, line in text_lines(path):
        if line.startswith("```"):
            in_code = not in_code
            continue
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if in_code or heading is None:
            continue
        slug = github_slug(heading.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def broken_target(path: Path, anchor: str | None) -> str | None:
    """Why a link target does not resolve, or None when it does."""
    if not path.exists():
        return "no such file"
    if anchor and path.suffix == ".md" and anchor not in anchors(path):
        return f"no heading #{anchor}"
    return None


def test_no_tracked_file_points_at_a_machine_path() -> None:
    problems = [
        f"{where(path, number)}: {line.strip()[:120]}"
        for path in tracked_files()
        for number, line in text_lines(path)
        if MACHINE_PATH.search(line) or SIBLING_CHECKOUT.search(line)
    ]
    assert problems == [], "paths outside the repository:\n" + "\n".join(problems)


def test_section_signs_cite_a_linked_document() -> None:
    problems = [
        f"{where(path, number)}: {line.strip()[:120]}"
        for path in tracked_files()
        for number, line in text_lines(path)
        if UNLINKED_PROTOCOL_DOC.search(line)
        or (SECTION_SIGN.search(line) and not LINKED.search(line))
    ]
    assert problems == [], "sections of unnamed documents:\n" + "\n".join(problems)


def test_references_to_the_devserver_docs_resolve() -> None:
    docs = ROOT / "infra/devserver/docs"
    problems = []
    cited = 0
    for path in tracked_files():
        for number, line in text_lines(path):
            for page, anchor in DOCS_REFERENCE.findall(line):
                cited += 1
                reason = broken_target(docs / page, anchor or None)
                if reason:
                    problems.append(f"{where(path, number)}: {page}#{anchor}: {reason}")
    assert cited >= 15, cited  # the engine's code cites its protocol docs; none found = broken test
    assert problems == [], "\n".join(problems)


def test_relative_markdown_links_resolve() -> None:
    problems = []
    for path in tracked_files():
        if path.suffix != ".md":
            continue
        in_code = False
        for number, line in text_lines(path):
            if line.startswith("```"):
                in_code = not in_code
            if in_code:
                continue
            for target in MARKDOWN_LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:, ...
                    continue
                file_part, _, anchor = target.partition("#")
                resolved = (path.parent / file_part).resolve() if file_part else path
                reason = broken_target(resolved, anchor or None)
                if reason:
                    problems.append(f"{where(path, number)}: {target}: {reason}")
    assert problems == [], "\n".join(problems)


def test_the_slugs_match_githubs() -> None:
    assert github_slug("Large payloads") == "large-payloads"
    assert github_slug("NonRetriableError and RetryAfterError") == (
        "nonretriableerror-and-retryaftererror"
    )
    assert github_slug("`use_api` (large payloads)") == "use_api-large-payloads"
    assert github_slug("Flow-control hook points (engine <-> devserver.flow)") == (
        "flow-control-hook-points-engine---devserverflow"
    )
