"""The Inngest boundary, for every service under `services/`: only the service's `functions`
module (or package) and its `app.py` import `inngest`; domain code never does
(`service_kit.boundary` reads each module with `ast`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_kit.boundary import boundary_offenders, inngest_imports, may_import_inngest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"


def service_packages() -> dict[str, Path]:
    """Each service's source package (`services/<service>/src/<package>/`), by service."""
    packages: dict[str, Path] = {}
    for service in sorted(
        path for path in SERVICES.iterdir() if (path / "pyproject.toml").exists()
    ):
        [package] = [
            path for path in (service / "src").iterdir() if (path / "__init__.py").exists()
        ]
        packages[service.name] = package
    return packages


def test_every_service_is_checked_and_has_a_functions_module() -> None:
    packages = service_packages()
    # The four services at least; a new one is checked as soon as it has a pyproject.toml.
    assert {"ingest-gateway", "notifier", "risk-worker", "support-worker"} <= set(packages)
    for service, package in packages.items():
        functions = [package / "functions.py", package / "functions" / "__init__.py"]
        assert any(path.exists() for path in functions), f"{service} has no functions module"


@pytest.mark.parametrize("service", sorted(service_packages()))
def test_only_functions_and_app_import_inngest(service: str) -> None:
    package = service_packages()[service]
    assert boundary_offenders(package) == []
    # The allowance is not vacuous: the functions side is where the imports are.
    allowed = [m for m in package.rglob("*.py") if may_import_inngest(package, m)]
    assert any(inngest_imports(m.read_text()) for m in allowed), f"{service}: no inngest import"


@pytest.mark.parametrize(
    "source",
    [
        "import inngest",
        "import inngest.experimental.mocked",
        "import os, inngest as sdk",
        "from inngest import NonRetriableError",
        "from inngest.experimental import mocked",
        "def later():\n    from inngest import Step",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import inngest",
        "import importlib\nimportlib.import_module('inngest')",
        "__import__('inngest.experimental')",
    ],
)
def test_every_form_of_importing_inngest_is_seen(source: str) -> None:
    assert len(inngest_imports(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "import inngest_helpers",
        "from .inngest import wrap",  # a local module of that name, not the SDK
        "from . import inngest",
        "# import inngest\nNOTE = 'from inngest import x'",
    ],
)
def test_what_is_not_an_inngest_import(source: str) -> None:
    assert inngest_imports(source) == []


def test_a_domain_module_importing_inngest_is_an_offender(tmp_path: Path) -> None:
    package = tmp_path / "some_service"
    (package / "functions").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("import inngest\n")
    (package / "functions" / "__init__.py").write_text("import inngest\n")
    (package / "functions" / "on_event.py").write_text("from inngest import Context\n")
    (package / "domain").mkdir()
    (package / "domain" / "rules.py").write_text("x = 1\nfrom inngest.experimental import mocked\n")
    (package / "domain" / "functions.py").write_text("import inngest\n")  # not the top one
    assert boundary_offenders(package) == [
        "domain/functions.py: line 1: inngest",
        "domain/rules.py: line 2: inngest.experimental",
    ]
