"""Settings and the Inngest client factory."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import inngest
import pytest
from pydantic import SecretStr, ValidationError
from service_kit.inngest_client import InngestConfigError, create_inngest_client
from service_kit.settings import InsecureSettingsError, ServiceSettings, is_placeholder_secret

SDK_VARS = (
    "INNGEST_DEV",
    "INNGEST_BASE_URL",
    "INNGEST_API_BASE_URL",
    "INNGEST_EVENT_API_BASE_URL",
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "INNGEST_EVENT_KEY",
    "INNGEST_ENV",
    "ENVIRONMENT",
    "DATABASE_URL",
    "PORT",
)
# Fresh per run: any literal in the repository is a published value production refuses.
REAL_LOOKING_KEY = "signkey-prod-" + secrets.token_hex(32)
FRESH_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
EVENT_KEY = secrets.token_hex(16)


class GatewayLikeSettings(ServiceSettings):
    port: int = 8000
    stripe_webhook_secret: SecretStr | None = None
    slack_token: str | None = None
    placeholder_secret_fields = ("slack_token",)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SDK_VARS:
        monkeypatch.delenv(name, raising=False)


def test_reads_plain_env_vars_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nerve@db:5432/nerve")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("INNGEST_DEV", "http://devserver:8288")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_abc")
    settings = GatewayLikeSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+asyncpg://nerve@db:5432/nerve"
    assert settings.port == 8123
    assert settings.environment == "development"
    assert settings.inngest_dev_mode and settings.inngest_origin == "http://devserver:8288"
    assert settings.secret("stripe_webhook_secret") == "whsec_abc"
    assert "whsec_abc" not in repr(settings)


def test_defaults() -> None:
    settings = ServiceSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "sqlite+aiosqlite:///.nerve/nerve.db"
    assert settings.redis_url is None
    assert settings.inngest_dev_mode and settings.inngest_origin == "http://127.0.0.1:8288"


@pytest.mark.parametrize(
    ("inngest_dev", "environment", "dev_mode"),
    [
        (None, "development", True),
        (None, "test", True),
        (None, "production", False),
        ("1", "production", True),
        ("false", "development", False),
        ("http://127.0.0.1:9999", "development", True),
    ],
)
def test_dev_mode_follows_inngest_dev(
    inngest_dev: str | None, environment: str, dev_mode: bool
) -> None:
    settings = ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        inngest_dev=inngest_dev,
        environment=environment,  # type: ignore[arg-type]
        inngest_signing_key=REAL_LOOKING_KEY,  # type: ignore[arg-type]
    )
    assert settings.inngest_dev_mode is dev_mode


def test_production_refuses_placeholder_secrets_naming_them() -> None:
    with pytest.raises(ValidationError) as error:
        GatewayLikeSettings(
            _env_file=None,  # type: ignore[call-arg]
            environment="production",
            inngest_signing_key="change-me",  # type: ignore[arg-type]
            stripe_webhook_secret="dev-stripe-secret",  # type: ignore[arg-type]
            slack_token="placeholder",
        )
    message = str(error.value)
    assert "INNGEST_SIGNING_KEY" in message
    assert "STRIPE_WEBHOOK_SECRET" in message
    assert "SLACK_TOKEN" in message
    assert "change-me" not in message  # never echo the secret itself
    assert isinstance(error.value.errors()[0]["ctx"]["error"], InsecureSettingsError)


def test_placeholders_are_fine_in_development_and_real_secrets_in_production() -> None:
    dev = GatewayLikeSettings(
        _env_file=None,  # type: ignore[call-arg]
        inngest_signing_key="change-me",  # type: ignore[arg-type]
    )
    assert dev.secret("inngest_signing_key") == "change-me"
    prod = GatewayLikeSettings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        inngest_signing_key=REAL_LOOKING_KEY,  # type: ignore[arg-type]
        stripe_webhook_secret=FRESH_WEBHOOK_SECRET,  # type: ignore[arg-type]
    )
    assert prod.is_production


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("changeme", True),
        ("CHANGE-ME", True),
        ("secret", True),
        ("dev-signing-key", True),
        ("short", True),
        ("whsec_3f9a8b7c6d", True),  # the part after whsec_ is too short
        ("signkey-prod-" + "5e" * 32, True),  # long, but two distinct characters
        ("local-compose-decisions-9c2e7a41", True),  # the old compose DECISION_TOKEN_SECRET
        # Fixed ids: the values are fresh per process, and pytest-xdist workers must collect
        # the same test names. (An id on the same line as a secret's name would be listed as a
        # published secret, hence the id on its own line.)
        pytest.param(
            FRESH_WEBHOOK_SECRET,
            False,
            id="fresh-whsec-False",
        ),
        pytest.param(REAL_LOOKING_KEY, False, id="fresh-prod-key-False"),
    ],
)
def test_placeholder_detection(value: str, placeholder: bool) -> None:
    assert is_placeholder_secret(value) is placeholder


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="unsupported DATABASE_URL backend 'mysql'"):
        ServiceSettings(_env_file=None, database_url="mysql://x@y/z")  # type: ignore[call-arg]


class _EventApi(BaseHTTPRequestHandler):
    received: list[tuple[str, list[dict[str, object]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _EventApi.received.append((self.path, body))
        payload = json.dumps({"ids": ["evt-1"], "status": 200}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def event_api() -> Iterator[str]:
    """A local HTTP server on a free port that records Event API requests."""
    _EventApi.received = []
    server = HTTPServer(("127.0.0.1", 0), _EventApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_dev_client_sends_to_the_configured_origin(event_api: str) -> None:
    settings = ServiceSettings(_env_file=None, inngest_dev=event_api)  # type: ignore[call-arg]
    client = create_inngest_client("support-worker", settings)
    assert client.app_id == "support-worker" and not client.is_production
    ids = await client.send(inngest.Event(name="test/ping", data={"n": 1}, id="ping-1"))
    assert ids == ["evt-1"]
    [(path, body)] = _EventApi.received
    assert path.startswith("/e/")
    assert body[0]["name"] == "test/ping" and body[0]["id"] == "ping-1"


async def test_production_client_uses_base_url_and_event_key(event_api: str) -> None:
    settings = ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        inngest_base_url=event_api,
        inngest_signing_key=REAL_LOOKING_KEY,  # type: ignore[arg-type]
        inngest_event_key=EVENT_KEY,  # type: ignore[arg-type]
    )
    client = create_inngest_client("notifier", settings)
    assert client.is_production
    await client.send(inngest.Event(name="test/ping", data={}))
    [(path, _body)] = _EventApi.received
    assert path == f"/e/{EVENT_KEY}"


def test_production_without_signing_key_is_refused() -> None:
    settings = ServiceSettings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(InngestConfigError, match="INNGEST_SIGNING_KEY"):
        create_inngest_client("risk-worker", settings)


class NestedSecretsSettings(ServiceSettings):
    sources: dict[str, dict[str, SecretStr]] = {}


def test_production_names_nested_secrets_and_why() -> None:
    with pytest.raises(ValidationError) as error:
        NestedSecretsSettings(
            _env_file=None,  # type: ignore[call-arg]
            environment="production",
            inngest_signing_key=REAL_LOOKING_KEY,  # type: ignore[arg-type]
            sources={
                "helpdesk": {"secret": SecretStr("dev-generic-secret-123")},
                "crm": {"secret": SecretStr(secrets.token_hex(20))},
            },
        )
    message = str(error.value)
    assert "SOURCES.helpdesk.secret (a placeholder)" in message
    assert "crm" not in message and "INNGEST_SIGNING_KEY" not in message
    assert "dev-generic-secret-123" not in message


def test_the_published_list_ships_with_service_kit_and_is_not_empty() -> None:
    from service_kit.published_secrets import is_published, published_fingerprints

    assert len(published_fingerprints()) > 50
    assert is_published("whsec_localcompose5d7f1b")  # the old .env.example default
    # A signing key is recognised under another environment prefix and in its bare form.
    assert is_published("signkey-prod-" + "a1b2c3d4e5f60718293a4b5c6d7e8f90" * 2)
    assert not is_published(secrets.token_hex(32))
