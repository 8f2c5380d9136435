"""Settings shared by every service: one pydantic-settings class per service subclasses this.

Environment variables (no prefix, case-insensitive; also read from `.env` in the working dir):

    SERVICE_NAME          service name used in logs and metrics
    ENVIRONMENT           development (default) | test | production
    DATABASE_URL          sqlite+aiosqlite:///.nerve/nerve.db (default) | postgresql+asyncpg://...
    REDIS_URL             unset = in-process fallbacks
    LOG_LEVEL             DEBUG | INFO (default) | WARNING | ERROR
    LOG_JSON              true (default) = one JSON object per line; false = console renderer
    PORT                  HTTP port (each service sets its own default)
    HTTP_TIMEOUT_SECONDS  timeout of the shared httpx client (default 10)
    INNGEST_DEV           "1"/"true" or a dev server URL = dev mode; "0"/"false" = production mode;
                          unset = dev mode unless ENVIRONMENT=production
    INNGEST_BASE_URL      engine origin (API + Event API), e.g. http://127.0.0.1:8288
    INNGEST_SIGNING_KEY   required in production mode
    INNGEST_EVENT_KEY     needed to send events in production mode
    INNGEST_SERVE_ORIGIN  the origin the engine should call this service on (Docker)

Secrets convention: every `SecretStr` value (top-level fields, and nested ones: inside dicts and
models, e.g. GENERIC_SOURCES' per-source secrets, SLACK_WEBHOOK_URLS' entries) plus any field
named in `placeholder_secret_fields` is checked outside development/test. A placeholder
("change-me", "dev-...", ...), a value shorter than 16 characters or with fewer than 6 distinct
ones, or a value published in the Nerve repository (see `service_kit.published_secrets`) is refused
with an error naming the variable (never echoing the value). Declare secrets as `SecretStr`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .db import DEFAULT_DATABASE_URL, normalize_url
from .published_secrets import weakness

Environment = Literal["development", "test", "production"]
DEFAULT_DEV_SERVER_URL = "http://127.0.0.1:8288"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def is_placeholder_secret(value: str) -> bool:
    """True for values that must not be a production secret (see `published_secrets.weakness`)."""
    return weakness(value) is not None


class InsecureSettingsError(ValueError):
    """Placeholder secrets outside development/test."""


class ServiceSettings(BaseSettings):
    """The shared base; see the module docstring for the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # Extra (non-SecretStr) fields to check for placeholders; SecretStr fields always are.
    placeholder_secret_fields: ClassVar[tuple[str, ...]] = ()

    service_name: str = "nerve"
    environment: Environment = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    log_level: str = "INFO"
    log_json: bool = True
    port: int = Field(default=8000, ge=0, le=65535)
    http_timeout_seconds: float = Field(default=10.0, gt=0)

    inngest_dev: str | None = None
    inngest_base_url: str | None = None
    inngest_signing_key: SecretStr | None = None
    inngest_event_key: SecretStr | None = None
    inngest_serve_origin: str | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        normalize_url(value)  # raises ValueError naming the unsupported backend
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("redis_url", "inngest_dev", "inngest_base_url", "inngest_serve_origin")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment in ("development", "test"):
            return self
        offending = []
        for name, value in sorted(self._secret_values().items()):
            reason = weakness(value)
            if reason:
                offending.append(f"{name} ({reason})")
        if offending:
            raise InsecureSettingsError(
                f"placeholder secret(s) in {self.environment}: {', '.join(offending)}; set fresh "
                "random values (`make compose-env` writes them; placeholders and values that "
                "appear in the repository are only accepted in development/test)"
            )
        return self

    def _secret_values(self) -> dict[str, str]:
        """Variable name (nested ones as VAR.key.field) -> plain value of every secret set."""
        values: dict[str, str] = {}
        for name in type(self).model_fields:
            value: Any = getattr(self, name)
            if name in self.placeholder_secret_fields and value is not None:
                value = SecretStr(str(value))
            _collect_secrets(name.upper(), value, values)
        return values

    # Derived views -----------------------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def inngest_dev_mode(self) -> bool:
        """Dev mode: INNGEST_DEV truthy or a URL; unset means dev unless in production."""
        if self.inngest_dev is None:
            return not self.is_production
        flag = self.inngest_dev.strip().lower()
        # "1"/"true" or a URL mean dev mode; "0"/"false" mean production mode.
        return flag not in _FALSE

    @property
    def inngest_origin(self) -> str | None:
        """The engine origin: INNGEST_BASE_URL, else the INNGEST_DEV URL, else the dev default
        in dev mode (None in production mode = the SDK's cloud default)."""
        if self.inngest_base_url:
            return self.inngest_base_url.rstrip("/")
        if self.inngest_dev and self.inngest_dev.strip().lower() not in _TRUE | _FALSE:
            return self.inngest_dev.strip().rstrip("/")
        return DEFAULT_DEV_SERVER_URL if self.inngest_dev_mode else None

    def secret(self, name: str) -> str | None:
        """The plain value of a SecretStr field (None when unset)."""
        value = getattr(self, name)
        if value is None:
            return None
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return str(value)


def _collect_secrets(path: str, value: Any, found: dict[str, str]) -> None:
    if isinstance(value, SecretStr):
        found[path] = value.get_secret_value()
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _collect_secrets(f"{path}.{field}", getattr(value, field), found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_secrets(f"{path}.{key}", item, found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _collect_secrets(f"{path}.{index}", item, found)
