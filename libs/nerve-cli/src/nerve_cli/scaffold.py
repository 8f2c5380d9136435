"""`nerve new-service NAME`: a new service from the template in `templates/service/`.

The result has the layout the real services have: `app.py` (FastAPI, the functions served at
/api/inngest), a `functions` package with one module per Inngest function (named after its id)
and `__init__.py` listing them, domain code that never imports inngest (`domain.py`, `deps.py`),
`settings.py`, `__main__.py`, and `tests/` mirroring them (the domain without Inngest, the
functions through the SDK's mock, the app, the boundary). It subscribes to one catalog event
through its typed model.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from shared_events.catalog import CATALOG

TEMPLATE_DIR = Path(__file__).parent / "templates" / "service"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ScaffoldError(ValueError):
    """The name, event or destination is unusable; the message says why."""


def scaffold_service(name: str, *, dest: Path, event: str, port: int = 8010) -> Path:
    """Write `dest/<name>/` and return its path. Refuses to overwrite anything."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"service name {name!r} must be lowercase words joined by dashes, e.g. loyalty-worker"
        )
    if event not in CATALOG:
        raise ScaffoldError(
            f"unknown event {event!r}; the catalog has: {', '.join(sorted(CATALOG))}"
        )
    model = CATALOG[event]
    if not model.sendable:
        raise ScaffoldError(f"{event} is an engine event; pick a catalog event services send")
    root = dest / name
    if root.exists():
        raise ScaffoldError(f"{root} already exists; pick another name or remove it")
    package = name.replace("-", "_")
    event_slug = re.sub(r"[^a-z0-9]+", "-", event.lower()).strip("-")
    fn_module = f"on_{event_slug.replace('-', '_')}"
    values = {
        "name": name,
        "package": package,
        "title": name.replace("-", " ").title(),
        "class_prefix": "".join(part.title() for part in name.split("-")),
        "event": event,
        "fn_id": f"on-{event_slug}",
        "fn_module": fn_module,
        "model": model.__name__,
        "port": str(port),
        "sample": repr(sample_data(model)),
    }
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        f"src/{package}/__init__.py": "__init__.py.tmpl",
        f"src/{package}/py.typed": None,
        f"src/{package}/settings.py": "settings.py.tmpl",
        f"src/{package}/deps.py": "deps.py.tmpl",
        f"src/{package}/domain.py": "domain.py.tmpl",
        f"src/{package}/functions/__init__.py": "functions_init.py.tmpl",
        f"src/{package}/functions/{fn_module}.py": "function.py.tmpl",
        f"src/{package}/app.py": "app.py.tmpl",
        f"src/{package}/__main__.py": "__main__.py.tmpl",
        "tests/conftest.py": "conftest.py.tmpl",
        f"tests/test_{package}_domain.py": "test_domain.py.tmpl",
        f"tests/test_{package}_functions.py": "test_functions.py.tmpl",
        f"tests/test_{package}_app.py": "test_app.py.tmpl",
        f"tests/test_{package}_boundary.py": "test_boundary.py.tmpl",
    }
    for relative, template in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = "" if template is None else render(template, values)
        target.write_text(text)
    tidy(root)
    return root


def tidy(root: Path) -> None:
    """Format the generated code with the workspace's ruff (line length, import order), when
    ruff is installed; the service is valid either way."""
    for args in (["format", "--quiet"], ["check", "--fix", "--quiet", "--exit-zero"]):
        try:
            subprocess.run(
                [sys.executable, "-m", "ruff", *args, str(root)],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return


def render(template: str, values: dict[str, str]) -> str:
    text = (TEMPLATE_DIR / template).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{(\w+)\}\}", text)
    if leftover:
        raise ScaffoldError(f"template {template} uses an unknown placeholder {leftover.group(0)}")
    return text


def sample_data(model: type[BaseModel]) -> dict[str, Any]:
    """Valid example data for a catalog model (used by the generated test and docs)."""
    data: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if not info.is_required():
            continue
        data[field_name] = _sample_value(field_name, info.annotation)
    # Round-trip through the model so the sample is certainly valid JSON data for it.
    sample: dict[str, Any] = json.loads(
        model.model_validate(data).model_dump_json(exclude_unset=True)
    )
    return sample


def _sample_value(field_name: str, annotation: Any) -> Any:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is not None and str(origin).endswith("Literal"):
        return args[0]
    if args and type(None) in args:
        annotation = next(a for a in args if a is not type(None))
    if annotation is bool:
        return True
    if annotation is int:
        return 1999
    if annotation is float:
        return 0.5
    if annotation is datetime:
        return datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    if annotation is date:
        return "2026-01-01"
    if field_name == "currency":
        return "usd"
    if field_name.endswith("_id"):
        return f"{field_name.removesuffix('_id')}_001"
    return f"sample {field_name}"
