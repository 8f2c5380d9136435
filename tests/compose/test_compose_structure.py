"""docker-compose.yml and infra/docker checked by structure (these machines run no Docker).

Asserts what would break a `docker compose up`: missing healthchecks, unpinned images, URLs and
ports that disagree with the services' own settings, keys Inngest rejects (odd-length or non-hex),
a connection cap above Postgres' limit, services Inngest never syncs, and Dockerfiles that run a
different entry point than `nerve dev` and the end-to-end tests do.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from nerve_cli.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
ONE_SHOT = {"migrate"}
INFRA = {"postgres", "redis", "inngest"}
APP_SERVICES = {spec.name: spec for spec in SERVICES}
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    """Compose's `${VAR:-default}` with an empty .env: the documented local defaults."""
    env = env or {}
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw)


def flags(command: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in command:
        if item.startswith("--") and "=" in item:
            key, value = item[2:].split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def settings_class(package: str) -> type[Any]:
    from service_kit.settings import ServiceSettings

    module = importlib.import_module(f"{package}.settings")
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ServiceSettings)
        and obj is not ServiceSettings
        and obj.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{package}.settings should define one settings class"
    return classes[0]


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == INFRA | ONE_SHOT | set(APP_SERVICES)


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is one-shot"
            assert service["healthcheck"] == {"disable": True}, name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"
        assert not check.get("disable"), name


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    inngest = services["inngest"]["depends_on"]
    for name in ("postgres", "redis", *APP_SERVICES):
        assert inngest[name]["condition"] == "service_healthy", f"inngest waits for {name}"
    # No cycle: no app service waits for the engine (it syncs them once they are healthy).
    for name in APP_SERVICES:
        assert "inngest" not in services[name]["depends_on"]


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} names no image"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} tag is not a version"
    text = DOCKERFILE.read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", text, re.MULTILINE))
    bases = re.findall(r"^(?:FROM|COPY --from=)\s*(\S+)", text, re.MULTILINE)
    external = [ref for ref in bases if ref not in stages]
    assert len(external) >= 3
    for ref in external:
        name, _, tag = ref.rpartition(":")
        assert name and re.search(r"\d+\.\d+", tag), f"Dockerfile base not pinned: {ref}"


def test_inngest_runs_start_on_its_own_postgres_database_and_redis(
    compose: dict[str, Any],
) -> None:
    inngest = compose["services"]["inngest"]
    command = inngest["command"]
    assert command[:2] == ["inngest", "start"]
    options = flags(command)
    postgres = urlsplit(options["postgres-uri"][0])
    assert (postgres.hostname, postgres.port, postgres.path) == ("postgres", 5432, "/inngest")
    redis = urlsplit(options["redis-uri"][0])
    assert redis.hostname == "redis" and redis.port == 6379
    # The database Inngest uses is created by the init script, apart from the services' one.
    init_sql = (ROOT / "infra/docker/postgres-init/01-inngest-database.sql").read_text()
    assert "CREATE DATABASE inngest" in init_sql
    mounts = compose["services"]["postgres"]["volumes"]
    assert any(
        m.startswith("./infra/docker/postgres-init:/docker-entrypoint-initdb.d") for m in mounts
    )
    for name in APP_SERVICES:
        url = urlsplit(compose["services"][name]["environment"]["DATABASE_URL"])
        assert url.path == "/nerve", f"{name} must not share Inngest's database"


def test_open_connection_cap_stays_well_under_postgres_limit(compose: dict[str, Any]) -> None:
    options = flags(compose["services"]["inngest"]["command"])
    cap = int(options["postgres-max-open-conns"][0])
    pg_command = compose["services"]["postgres"]["command"]
    max_connections = int(
        next(item.split("=")[1] for item in pg_command if item.startswith("max_connections="))
    )
    assert 0 < cap <= max_connections // 4, (cap, max_connections)
    assert int(options["postgres-max-idle-conns"][0]) <= cap


def test_keys_are_even_length_hex_and_shared_with_the_services(compose: dict[str, Any]) -> None:
    options = flags(compose["services"]["inngest"]["command"])
    signing_key = options["signing-key"][0]
    event_key = options["event-key"][0]
    bare = re.sub(r"^signkey-\w+-", "", signing_key)
    for key in (bare, event_key):
        assert re.fullmatch(r"(?:[0-9a-f]{2})+", key), f"{key!r} is not even-length hex"
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["INNGEST_SIGNING_KEY"] == signing_key, name
        assert env["INNGEST_EVENT_KEY"] == event_key, name


def test_secrets_come_from_the_env_file(raw: dict[str, Any]) -> None:
    secret_words = ("PASSWORD", "SECRET", "TOKEN", "SIGNING_KEY", "EVENT_KEY", "API_KEY")
    for name, service in raw["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if any(word in key for word in secret_words):
                assert value is None or "${" in str(value), f"{name}.{key} is hard-coded"
        for item in service.get("command") or []:
            if isinstance(item, str) and re.match(r"--(signing-key|event-key)=", item):
                assert "${" in item, f"{name}: {item} is hard-coded"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_urls_and_ports_agree_with_the_services_settings(
    compose: dict[str, Any], name: str
) -> None:
    spec = APP_SERVICES[name]
    service = compose["services"][name]
    env = service["environment"]
    port = int(env["PORT"])
    settings_port = settings_class(spec.package).model_fields["port"].default
    assert port == settings_port == spec.default_port, (port, settings_port, spec.default_port)
    assert service["ports"] == [f"{port}:{port}"]
    assert str(port) == str(service["build"]["args"]["PORT"])
    assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    assert env["INNGEST_SERVE_ORIGIN"] == f"http://{name}:{port}"
    assert env["INNGEST_BASE_URL"] == "http://inngest:8288"
    assert env["SERVICE_NAME"] == name
    sdk_urls = flags(compose["services"]["inngest"]["command"])["sdk-url"]
    assert f"http://{name}:{port}/api/inngest" in sdk_urls


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_environment_passes_the_production_settings_checks(
    compose: dict[str, Any], name: str
) -> None:
    """The local defaults are real-looking values: a production service accepts them."""
    env = {k: v for k, v in compose["services"][name]["environment"].items() if v is not None}
    settings = settings_class(APP_SERVICES[name].package)(**{k.lower(): v for k, v in env.items()})
    assert settings.environment == "production"
    assert settings.is_production and not settings.inngest_dev_mode
    assert settings.secret("inngest_signing_key")


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_images_run_the_entry_point_the_tests_run(compose: dict[str, Any], name: str) -> None:
    spec = APP_SERVICES[name]
    build = compose["services"][name]["build"]
    assert build["dockerfile"] == "infra/docker/Dockerfile" and build["context"] == "."
    assert build["args"]["PACKAGE"] == spec.package
    dockerfile = DOCKERFILE.read_text()
    assert "python -m uvicorn ${PACKAGE}.app:create_app --factory" in dockerfile
    # `nerve dev` / the e2e stack start exactly `<package>.app:create_app` with --factory.
    assert spec.factory == f"{spec.package}.app:create_app"
    assert importlib.util.find_spec(f"{spec.package}.app") is not None
    # MEMBER names the workspace member that ships this package.
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    member_dirs = [ROOT / m for m in members["members"]]
    owner = [d for d in member_dirs if (d / "src" / spec.package).is_dir()]
    assert len(owner) == 1
    project = tomllib.loads((owner[0] / "pyproject.toml").read_text())["project"]["name"]
    assert build["args"]["MEMBER"] == project


def test_migrate_runs_the_migrations_cli(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["build"]["args"]["MEMBER"] == "nerve-migrations"
    assert migrate["command"] == ["python", "-m", "nerve_migrations", "upgrade"]
    assert importlib.util.find_spec("nerve_migrations.__main__") is not None
