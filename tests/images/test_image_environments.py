"""Each Docker image's environment, built and started the way infra/docker/Dockerfile does it.

No Docker here: for every image in docker-compose.yml this builds the image's virtualenv with the
uv version the Dockerfile pins and the Dockerfile's own `uv sync ...` line (`--locked --no-dev
--no-editable --package MEMBER`, so only the member's declared dependencies are installed, as
wheels), then runs the image's command from a directory outside the workspace:

- migrate: the compose command (`python -m nerve_migrations upgrade`) on a fresh SQLite file;
- services: the Dockerfile's CMD in `ENVIRONMENT=production` with the compose environment (secrets
  from `nerve compose-env`), until `/readyz` answers; then the compose healthcheck and the
  Dockerfile HEALTHCHECK commands, run with the image environment's own programs.

A dependency a member uses but does not declare is found here (the workspace .venv has
everything, so the other tests cannot see it), including imports inside functions: every import
of the installed workspace packages must resolve in the image environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_client import free_port
from nerve_cli import compose_file
from nerve_cli.compose_env_cmd import generate_env

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Imports that are allowed not to resolve in an image, with the reason.
NOT_SHIPPED = {
    # Test fixtures shipped inside the packages, imported only by the test suites (which run in
    # the workspace environment); the start test below proves no app imports them.
    "service_kit.testing": {"pytest", "pytest_asyncio", "nerve_migrations"},
}
# Test-only workspace packages (the root `dev` group installs them): never in an image.
DEV_ONLY_PACKAGES = ("nerve_testing",)


@dataclass(frozen=True)
class Image:
    service: str  # compose service name
    member: str  # workspace member (MEMBER build arg)
    package: str  # PACKAGE build arg
    port: int | None
    command: list[str] | None  # compose `command` (None = the Dockerfile CMD)
    healthcheck: list[str] | None  # compose healthcheck test (CMD form)
    environment: dict[str, Any]


def dockerfile_text() -> str:
    return DOCKERFILE.read_text()


def pinned_uv_version() -> str:
    match = re.search(r"^COPY --from=ghcr\.io/astral-sh/uv:(\S+) /uv ", dockerfile_text(), re.M)
    assert match, "the Dockerfile no longer copies a pinned uv"
    return match.group(1)


def dockerfile_sync_args(member: str) -> list[str]:
    match = re.search(r"^RUN uv (sync .*)$", dockerfile_text(), re.M)
    assert match, "the Dockerfile no longer runs `uv sync`"
    return [arg.replace("${MEMBER}", member) for arg in shlex.split(match.group(1))]


def dockerfile_json(instruction: str) -> list[str]:
    """The exec-form (JSON) argument list of the runtime stage's CMD / HEALTHCHECK CMD."""
    text = dockerfile_text().replace("\\\n", " ")
    runtime = text[text.index("AS runtime") :]
    pattern = r"^CMD (\[.*\])$" if instruction == "CMD" else r"^HEALTHCHECK .*?CMD (\[.*\])$"
    match = re.search(pattern, runtime, re.M)
    assert match, f"the Dockerfile has no exec-form {instruction}"
    value = json.loads(match.group(1))
    assert isinstance(value, list)
    return [str(item) for item in value]


def compose_images() -> list[Image]:
    document = compose_file.load(COMPOSE)
    env = generate_env()
    images = []
    for name, service in document["services"].items():
        build = service.get("build")
        if not build:
            continue
        args = build["args"]
        check = (service.get("healthcheck") or {}).get("test")
        environment = compose_file.interpolate(service.get("environment") or {}, env)
        images.append(
            Image(
                service=name,
                member=args["MEMBER"],
                package=args["PACKAGE"],
                port=int(args["PORT"]) if "PORT" in args else None,
                command=service.get("command"),
                healthcheck=check[1:] if check and check[0] == "CMD" else None,
                environment={k: v for k, v in environment.items() if v is not None},
            )
        )
    return images


IMAGES = compose_images()
SERVICES = [image for image in IMAGES if image.command is None]
MIGRATE = next(image for image in IMAGES if image.command is not None)


def workspace_members() -> list[str]:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    return [
        tomllib.loads((ROOT / path / "pyproject.toml").read_text())["project"]["name"]
        for path in members["members"]
    ]


def uv_command() -> list[str]:
    """The Dockerfile's uv version, run through the workspace's uv (cached after one download)."""
    uv = shutil.which("uv")
    base = [uv] if uv else [sys.executable, "-m", "uv"]
    return [*base, "tool", "run", "--from", f"uv=={pinned_uv_version()}", "uv"]


def build_environment(member: str, venv: Path) -> None:
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys.executable,
    }
    for key in ("VIRTUAL_ENV", "UV_COMPILE_BYTECODE"):
        env.pop(key, None)
    # uv caches the wheels it builds from the workspace and reuses them until a member's
    # pyproject.toml changes (its cache key), not when its code changes: rebuild every member so
    # the environment holds this checkout's code, as a fresh `docker build` would.
    refresh = [arg for name in workspace_members() for arg in ("--refresh-package", name)]
    result = subprocess.run(
        [*uv_command(), *dockerfile_sync_args(member), *refresh],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert result.returncode == 0, f"uv sync for {member} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """member -> its image virtualenv, all built in parallel (they share uv's cache)."""
    base = tmp_path_factory.mktemp("image-envs")
    venvs = {image.member: base / image.member for image in IMAGES}
    with ThreadPoolExecutor(max_workers=len(venvs)) as pool:
        for future in [pool.submit(build_environment, m, v) for m, v in venvs.items()]:
            future.result()
    return venvs


def image_process_env(venv: Path, image: Image, extra: dict[str, str]) -> dict[str, str]:
    """The container's environment: the image's ENV, then compose's, then the test's."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(venv.parent),
        "PYTHONUNBUFFERED": "1",
        "PACKAGE": image.package,
        "PORT": str(image.port or 8000),
    }
    env.update({key: str(value) for key, value in image.environment.items()})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory outside the workspace (no .env, no sources on sys.path)."""
    return tmp_path_factory.mktemp("outside-workspace")


@pytest.fixture(scope="module")
def migrated_database(environments: dict[str, Path], outside: Path) -> str:
    url = f"sqlite+aiosqlite:///{outside / 'nerve.db'}"
    assert MIGRATE.command is not None
    result = subprocess.run(
        MIGRATE.command,
        cwd=outside,
        env=image_process_env(environments[MIGRATE.member], MIGRATE, {"DATABASE_URL": url}),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, (
        f"the {MIGRATE.service} image's command {MIGRATE.command} failed:\n"
        f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
    )
    return url


def test_migrate_image_runs_its_command(migrated_database: str) -> None:
    import sqlite3

    path = migrated_database.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        customers = db.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert {"alembic_version", "customers", "audit_log", "outbox"} <= tables
    assert customers > 0, "the seed data was not loaded"


@dataclass
class Running:
    image: Image
    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, deadline: float) -> str | None:
        """None once /readyz answers 200, else why not."""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}"
            try:
                url = f"http://127.0.0.1:{self.port}/readyz"
                if httpx.get(url, timeout=2).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return f"never became ready:\n{self.log.read_text()[-3000:]}"


@pytest.fixture(scope="module")
def running(
    environments: dict[str, Path], migrated_database: str, outside: Path
) -> Iterator[dict[str, Running]]:
    """Every service image's CMD, started at once (startup is mostly imports)."""
    started: dict[str, Running] = {}
    try:
        for image in SERVICES:
            port = free_port()
            env = image_process_env(
                environments[image.member],
                image,
                {
                    "PORT": str(port),
                    "DATABASE_URL": migrated_database,
                    # No Redis and no engine here: the services start without them (in-process
                    # fallbacks; the engine syncs them, they do not call it at startup).
                    "INNGEST_BASE_URL": f"http://127.0.0.1:{free_port()}",
                },
            )
            env.pop("REDIS_URL", None)
            log = outside / f"{image.service}.log"
            with log.open("w") as sink:
                process = subprocess.Popen(
                    dockerfile_json("CMD"),
                    cwd=outside,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started[image.service] = Running(image, env, port, process, log)
        yield started
    finally:
        for service in started.values():
            service.process.terminate()
        for service in started.values():
            try:
                service.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


@pytest.mark.parametrize("image", SERVICES, ids=[i.service for i in SERVICES])
def test_service_image_starts_in_production_and_passes_its_healthchecks(
    image: Image, running: dict[str, Running], outside: Path
) -> None:
    service = running[image.service]
    problem = service.wait_ready(time.monotonic() + 120)
    assert problem is None, f"{image.service} {problem}"
    health = httpx.get(f"http://127.0.0.1:{service.port}/healthz", timeout=5).json()
    assert health == {"status": "ok", "service": image.service}
    # The compose healthcheck (its fixed port swapped for this run's) and the Dockerfile's, each
    # executed by a program the image environment provides.
    assert image.healthcheck, f"{image.service} has no CMD healthcheck"
    here = f"127.0.0.1:{service.port}"
    compose_check = [a.replace(f"127.0.0.1:{image.port}", here) for a in image.healthcheck]
    for check in (compose_check, dockerfile_json("HEALTHCHECK")):
        program = shutil.which(check[0], path=service.env["PATH"].split(":")[0])
        assert program, f"{check[0]} is not in the {image.service} image environment"
        result = subprocess.run(
            [program, *check[1:]],
            cwd=outside,
            env=service.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, f"healthcheck {check} failed: {result.stderr[-2000:]}"


IMPORT_CHECK = r"""
import ast, importlib.util, json, pathlib, sys

def imported_modules(tree):
    # Every absolute import, except those under `if TYPE_CHECKING:` (never run).
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module

missing = {}
for package in json.loads(sys.argv[1]):
    spec = importlib.util.find_spec(package)
    if spec is None:
        continue  # not part of this image
    root = pathlib.Path(list(spec.submodule_search_locations)[0])
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        name = ".".join(parts).removesuffix(".__init__")
        for imported in imported_modules(tree):
            top = imported.split(".")[0]
            if importlib.util.find_spec(top) is None:
                missing.setdefault(name, set()).add(top)
print(json.dumps({k: sorted(v) for k, v in missing.items()}))
"""


def workspace_packages() -> list[str]:
    return sorted(p.name for p in ROOT.glob("*/*/src/*") if (p / "__init__.py").exists())


@pytest.mark.parametrize("image", IMAGES, ids=[i.service for i in IMAGES])
def test_every_import_of_the_shipped_code_resolves_in_the_image(
    image: Image, environments: dict[str, Path], outside: Path
) -> None:
    venv = environments[image.member]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IMPORT_CHECK, json.dumps(workspace_packages())],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    missing = {
        module: sorted(set(tops) - NOT_SHIPPED.get(module, set()))
        for module, tops in json.loads(result.stdout).items()
    }
    missing = {module: tops for module, tops in missing.items() if tops}
    assert not missing, (
        f"{image.member} ({image.service} image) imports modules its environment lacks "
        f"(declare them in its pyproject.toml): {missing}"
    )


def test_a_service_image_refuses_to_start_with_a_published_secret(
    environments: dict[str, Path], migrated_database: str, outside: Path
) -> None:
    """The published-secrets list ships in the image: a value copied from the repository (here
    the old compose default, and a generic source's secret from its docs) stops the service."""
    image = next(image for image in SERVICES if image.service == "ingest-gateway")
    env = image_process_env(
        environments[image.member],
        image,
        {
            "PORT": str(free_port()),
            "DATABASE_URL": migrated_database,
            "ADMIN_API_TOKEN": "local-compose-admin-8b44",
            "GENERIC_SOURCES": json.dumps(
                {
                    "helpdesk": {
                        "secret": "generic-fuzz-secret-0123456789",
                        "event": "ticket/resolved",
                        "id_path": "ticket.id",
                    }
                }
            ),
        },
    )
    result = subprocess.run(
        dockerfile_json("CMD"), cwd=outside, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "ADMIN_API_TOKEN (published in the Nerve repository)" in output, output[-2000:]
    assert "GENERIC_SOURCES.helpdesk.secret (published in the Nerve repository)" in output
    assert "local-compose-admin-8b44" not in output  # the value itself is never echoed


@pytest.mark.parametrize("image", IMAGES, ids=[i.service for i in IMAGES])
def test_no_image_installs_the_test_only_packages(
    image: Image, environments: dict[str, Path], outside: Path
) -> None:
    venv = environments[image.member]
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util, sys; "
            "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))",
            *DEV_ONLY_PACKAGES,
        ],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.split() == [], f"the {image.service} image ships {found.stdout.strip()}"
