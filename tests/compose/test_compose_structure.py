"""docker-compose.yml and infra/docker checked by structure (these machines run no Docker).

Asserts what would break a `docker compose up`: missing healthchecks or healthchecks calling a
program the image lacks, unpinned images, URLs and ports that disagree with the services' own
settings, keys `inngest start` rejects (checked with the server's own rule), secrets with usable
defaults, ports published beyond 127.0.0.1, a connection cap above Postgres' limit, services
Inngest never syncs, and Dockerfiles that run a different entry point than `nerve dev` and the
end-to-end tests do. The file is interpolated with what `nerve compose-env` writes.
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
from engine_client import hashed_signing_key
from nerve_cli import compose_file
from nerve_cli.compose_env_cmd import generate_env
from nerve_cli.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
ONE_SHOT = {"migrate"}
INFRA = {"postgres", "redis", "inngest"}
APP_SERVICES = {spec.name: spec for spec in SERVICES}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "SIGNING_KEY", "EVENT_KEY", "API_KEY")
# `.env` as `make compose-env` writes it (fresh random values).
ENV = generate_env()

# Programs each third-party image ships, read from the image's own Dockerfile for the pinned tag.
# A tag bump fails test_healthchecks_call_programs_the_images_ship until this is re-checked.
IMAGE_PROGRAMS = {
    # inngest/inngest release images are built from Dockerfile.goreleaser; at v1.12.1:
    # `FROM debian:stable-slim` + `apt-get install ca-certificates tzdata curl` + /bin/inngest.
    # No wget (and curl is gone again from v1.20 on).
    "inngest/inngest:v1.12.1": {"inngest", "curl", "sh", "bash"},
    # The official Alpine images: busybox (sh, grep, cut) plus the server's client tools.
    "postgres:16.4-alpine": {"pg_isready", "psql", "sh", "grep", "cut"},
    "redis:7.4.1-alpine": {"redis-cli", "redis-server", "sh"},
}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return compose_file.load(COMPOSE)


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return compose_file.interpolate(raw, ENV)


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


def server_accepts_signing_key(key: str) -> bool:
    """`inngest start`'s own check (cmd/start/start.go): an even number of characters ("Error:
    signing-key must be hex string with even number of chars"), then hex-decodable."""
    return len(key) % 2 == 0 and re.fullmatch(r"[0-9a-fA-F]+", key) is not None


def test_server_keys_are_in_the_form_inngest_start_accepts(compose: dict[str, Any]) -> None:
    options = flags(compose["services"]["inngest"]["command"])
    [signing_key] = options["signing-key"]
    [event_key] = options["event-key"]
    assert server_accepts_signing_key(signing_key), f"inngest start rejects {signing_key!r}"
    assert re.fullmatch(r"(?:[0-9a-f]{2})+", event_key), f"{event_key!r} is not even-length hex"


def test_the_sdk_form_of_the_prefixed_key_is_rejected_by_the_server_rule() -> None:
    """The rule above is the server's: the SDK's spelling would stop `inngest start`."""
    assert not server_accepts_signing_key("signkey-prod-" + ENV["INNGEST_SIGNING_KEY_HEX"])


def test_services_get_the_same_keys_in_the_sdk_form(compose: dict[str, Any]) -> None:
    options = flags(compose["services"]["inngest"]["command"])
    [server_key] = options["signing-key"]
    [event_key] = options["event-key"]
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        sdk_key = env["INNGEST_SIGNING_KEY"]
        assert re.fullmatch(r"signkey-prod-(?:[0-9a-f]{2})+", sdk_key), (name, sdk_key)
        # The same key: the SDK's bearer credential is what the server expects.
        assert hashed_signing_key(sdk_key) == hashed_signing_key(server_key), name
        assert env["INNGEST_EVENT_KEY"] == event_key, name


def secret_variable(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


def test_no_secret_has_a_default(raw: dict[str, Any]) -> None:
    """Every secret comes from .env (`${VAR:?message}`), never from a value in the file."""
    references = compose_file.references(raw)
    secrets = {name for name, _op, _arg in references if secret_variable(name)}
    assert {"POSTGRES_PASSWORD", "INNGEST_SIGNING_KEY_HEX", "INNGEST_EVENT_KEY"} <= secrets
    for name, op, arg in references:
        if secret_variable(name):
            assert op == ":?", f"${{{name}}} must be ${{{name}:?...}}, not {op!r}"
            assert "compose-env" in arg, f"{name}: the message should say how to create it"
    for service_name, service in raw["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if secret_variable(key):
                pass_through = value is None  # `OPENAI_API_KEY:` = from the shell / .env
                assert pass_through or "${" in str(value), f"{service_name}.{key} is hard-coded"
        for item in service.get("command") or []:
            if isinstance(item, str) and re.match(r"--(signing-key|event-key)=", item):
                assert re.search(r"=\$\{\w+:\?", item), f"{service_name}: {item} has a default"


@pytest.mark.parametrize(
    "missing", sorted(compose_file.required_variables(compose_file.load(COMPOSE)))
)
def test_compose_refuses_to_start_without_each_secret(raw: dict[str, Any], missing: str) -> None:
    env = {key: value for key, value in ENV.items() if key != missing}
    with pytest.raises(compose_file.MissingVariableError) as error:
        compose_file.interpolate(raw, env)
    assert error.value.name == missing
    assert "make compose-env" in str(error.value)


def test_compose_env_writes_every_variable_the_file_requires(raw: dict[str, Any]) -> None:
    required = compose_file.required_variables(raw)
    assert set(required) <= set(ENV)
    compose_file.interpolate(raw, ENV)  # nothing missing


def test_published_ports_listen_on_localhost_unless_the_user_opts_out(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    for name, service in raw["services"].items():
        for mapping in service.get("ports") or []:
            assert mapping.startswith("${NERVE_BIND_ADDRESS:-127.0.0.1}:"), (name, mapping)
    for name, service in compose["services"].items():
        for mapping in service.get("ports") or []:
            assert mapping.startswith(f"{ENV['NERVE_BIND_ADDRESS']}:"), (name, mapping)
    without_env = compose_file.interpolate(raw["services"]["inngest"]["ports"], {})
    assert without_env == ["127.0.0.1:8288:8288"]
    opted_out = compose_file.interpolate(
        raw["services"]["inngest"]["ports"], {"NERVE_BIND_ADDRESS": "0.0.0.0"}
    )
    assert opted_out == ["0.0.0.0:8288:8288"]


def test_redis_has_no_password_so_it_is_not_published(compose: dict[str, Any]) -> None:
    assert not compose["services"]["redis"].get("ports")


def shell_programs(command: str) -> set[str]:
    """The programs a `sh -c` command line runs (first word of each pipeline part)."""
    unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "ARG", command)
    return {part.split()[0] for part in re.split(r"&&|\|\||\||;", unquoted) if part.strip()}


def test_healthchecks_call_programs_the_images_ship(compose: dict[str, Any]) -> None:
    dockerfile = DOCKERFILE.read_text()
    runtime = dockerfile[dockerfile.index("AS runtime") :]
    for name, service in compose["services"].items():
        test = (service.get("healthcheck") or {}).get("test")
        if not test:
            continue
        if test[0] == "CMD-SHELL":
            programs = shell_programs(test[1]) | {"sh"}
        else:
            assert test[0] == "CMD", (name, test)
            programs = {test[1]}
        if "build" in service:
            # Our images: the runtime stage puts the image's virtualenv first on PATH; the
            # image-environment test runs this very command with that environment's programs.
            assert programs == {"python"}, (name, programs)
            assert "ENV PATH=/app/.venv/bin:$PATH" in runtime
            continue
        image = service["image"]
        assert image in IMAGE_PROGRAMS, f"{image}: check what its Dockerfile installs"
        assert programs <= IMAGE_PROGRAMS[image], f"{name}: {programs - IMAGE_PROGRAMS[image]}"


def test_inngest_healthcheck_probes_the_unauthenticated_health_route(
    compose: dict[str, Any],
) -> None:
    test = compose["services"]["inngest"]["healthcheck"]["test"]
    assert test[-1] == "http://127.0.0.1:8288/health"
    assert "-f" in " ".join(test), "curl must fail on an HTTP error status"


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
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
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
    """A production service accepts the fresh secrets `nerve compose-env` writes."""
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
