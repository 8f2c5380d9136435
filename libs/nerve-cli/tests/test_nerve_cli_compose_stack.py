"""Reading a compose file into local processes: interpolation as docker compose does it, the
engine's own flags, and compose host names rewritten to local addresses."""

from __future__ import annotations

from pathlib import Path

import pytest
from nerve_cli.compose_stack import (
    ComposeError,
    ComposeFile,
    Endpoint,
    production_stack,
    rewrite_urls,
    substitute,
)

COMPOSE = """
x-service-env: &service-env
  ENVIRONMENT: production
  DATABASE_URL: postgresql+asyncpg://postgres:${POSTGRES_PASSWORD:?set it}@postgres:5432/app
  REDIS_URL: redis://redis:6379/0
  INNGEST_BASE_URL: http://inngest:8288
  INNGEST_SIGNING_KEY: signkey-prod-${SIGNING_KEY_HEX:?run make compose-env}
  INNGEST_EVENT_KEY: ${EVENT_KEY:?}
services:
  inngest:
    image: inngest/inngest:v1.2.3
    command:
      - inngest
      - start
      - --host=0.0.0.0
      - --port=8288
      - --postgres-uri=postgres://postgres:${POSTGRES_PASSWORD:?}@postgres:5432/inngest?sslmode=disable
      - --redis-uri=redis://redis:6379/1
      - --signing-key=${SIGNING_KEY_HEX:?}
      - --sdk-url=http://worker:8001/api/inngest
  worker:
    environment:
      <<: *service-env
      PORT: "8001"
      INNGEST_SERVE_ORIGIN: http://worker:8001
      OPENAI_API_KEY:
      GREETING: ${GREETING:-hello $$USER}
"""


def test_substitute_follows_compose_interpolation() -> None:
    values = {"SET": "x", "EMPTY": ""}
    assert substitute("${SET}-${UNSET}-$SET", values) == "x--x"
    assert substitute("${EMPTY:-d}|${EMPTY-d}|${UNSET-d}", values) == "d||d"
    assert substitute("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}", values) == "alt||alt"
    assert substitute("cost $$5", values) == "cost $5"
    with pytest.raises(ComposeError, match="EMPTY is required: give one"):
        substitute("${EMPTY:?give one}", values)
    assert substitute("${EMPTY?}", values) == ""
    with pytest.raises(ComposeError, match="UNSET"):
        substitute("${UNSET?}", values)


def test_rewrite_urls_only_touches_known_addresses() -> None:
    endpoints = {"db:5432": Endpoint("127.0.0.1:6000", userinfo="me", paths={"/app": "/t1"})}
    text = "postgres://u:p@db:5432/app?x=1 http://db:80/app http://other:5432/app"
    assert rewrite_urls(text, endpoints) == (
        "postgres://me@127.0.0.1:6000/t1?x=1 http://db:80/app http://other:5432/app"
    )


def test_production_stack_keeps_the_compose_flags_and_points_them_at_local_parts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    compose = ComposeFile.load(path)
    variables = {"POSTGRES_PASSWORD": "pw", "SIGNING_KEY_HEX": "ab" * 4, "EVENT_KEY": "cd" * 4}
    assert compose.variables() == {"POSTGRES_PASSWORD", "SIGNING_KEY_HEX", "EVENT_KEY", "GREETING"}
    assert compose.url_paths("postgres:5432", variables) == {"/app", "/inngest"}
    plan = production_stack(
        compose,
        variables,
        inngest_bin="/opt/bin/inngest",
        engine_port=9100,
        service_ports={"worker": 9101},
        endpoints={
            "postgres:5432": Endpoint(
                "127.0.0.1:5432", userinfo="postgres", paths={"/app": "/a1", "/inngest": "/i1"}
            ),
            "redis:6379": Endpoint("127.0.0.1:6379", paths={"/0": "/7", "/1": "/8"}),
        },
    )
    assert plan.engine_argv == [
        "/opt/bin/inngest",
        "start",
        "--host=127.0.0.1",
        "--port=9100",
        "--postgres-uri=postgres://postgres@127.0.0.1:5432/i1?sslmode=disable",
        "--redis-uri=redis://127.0.0.1:6379/8",
        "--signing-key=abababab",
        "--sdk-url=http://127.0.0.1:9101/api/inngest",
    ]
    assert plan.service_env["worker"] == {
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/a1",
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "INNGEST_BASE_URL": "http://127.0.0.1:9100",
        "INNGEST_SIGNING_KEY": "signkey-prod-abababab",
        "INNGEST_EVENT_KEY": "cdcdcdcd",
        "PORT": "9101",
        "INNGEST_SERVE_ORIGIN": "http://127.0.0.1:9101",
        "GREETING": "hello $USER",
    }
    assert plan.shared("INNGEST_EVENT_KEY") == "cdcdcdcd"


def test_a_missing_required_variable_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    with pytest.raises(ComposeError, match="SIGNING_KEY_HEX is required: run make compose-env"):
        ComposeFile.load(path).environment("worker", {"POSTGRES_PASSWORD": "pw"})
