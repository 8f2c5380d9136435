"""Production settings refuse every secret value published in this repository.

The values come from the same scan that writes service-kit's list (scripts/published_secrets.py):
each one is put into every secret variable of every service, including nested secrets (a
generic source's `secret`, an entry of SLACK_WEBHOOK_URLS), and each variable must be named in the
refusal. The same variables accept the fresh values `nerve compose-env` generates.
"""

from __future__ import annotations

import importlib.util
import secrets
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from ingest_gateway.settings import GatewaySettings
from notifier.settings import NotifierSettings
from pydantic import SecretStr, ValidationError
from risk_worker.settings import RiskSettings
from service_kit.settings import ServiceSettings
from support_worker.settings import SupportSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (GatewaySettings, SupportSettings, RiskSettings, NotifierSettings)


def _scanner() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "published_secrets_script", ROOT / "scripts" / "published_secrets.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUBLISHED = sorted(_scanner().scan())


def secret_fields(settings_class: type[ServiceSettings]) -> list[str]:
    return [
        name
        for name, field in settings_class.model_fields.items()
        if SecretStr in typing.get_args(field.annotation) or field.annotation is SecretStr
    ]


def settings_with(
    settings_class: type[ServiceSettings], value: str
) -> tuple[dict[str, Any], set[str]]:
    """Keyword arguments that set every secret of `settings_class` to `value`, and the variable
    names a refusal must give."""
    kwargs: dict[str, Any] = {name: value for name in secret_fields(settings_class)}
    names = {name.upper() for name in kwargs}
    if settings_class is GatewaySettings and len(value) >= 16:
        # (a shorter generic-source secret is refused by the source's own validator)
        kwargs["generic_sources"] = {
            "helpdesk": {"secret": value, "event": "ticket/resolved", "id_path": "ticket.id"}
        }
        names.add("GENERIC_SOURCES.helpdesk.secret")
    if settings_class is NotifierSettings:
        kwargs["slack_webhook_urls"] = {"ops": value}
        names.add("SLACK_WEBHOOK_URLS.ops")
    return kwargs, names


def test_the_scan_finds_the_values_the_issue_names() -> None:
    published = set(PUBLISHED)
    assert "whsec_localcompose5d7f1b" in published  # the old .env.example / compose default
    assert "dev-decision-token-secret" in published  # `nerve dev`'s local default
    assert len(published) > 50


@pytest.mark.parametrize("value", PUBLISHED)
def test_production_refuses_a_published_value_in_every_secret_variable(value: str) -> None:
    for settings_class in SETTINGS:
        kwargs, names = settings_with(settings_class, value)
        with pytest.raises(ValidationError) as error:
            settings_class(_env_file=None, environment="production", **kwargs)  # type: ignore[call-arg]
        message = str(error.value)
        for name in names:
            assert name in message, f"{settings_class.__name__}: {name} not named"


@pytest.mark.parametrize("settings_class", SETTINGS, ids=lambda c: c.__name__)
def test_production_accepts_fresh_random_secrets(settings_class: type[ServiceSettings]) -> None:
    kwargs, _names = settings_with(settings_class, secrets.token_hex(24))
    settings = settings_class(_env_file=None, environment="production", **kwargs)  # type: ignore[call-arg]
    assert settings.is_production


@pytest.mark.parametrize("settings_class", SETTINGS, ids=lambda c: c.__name__)
def test_development_still_accepts_published_values(settings_class: type[ServiceSettings]) -> None:
    kwargs, _names = settings_with(settings_class, "dev-decision-token-secret")
    assert not settings_class(_env_file=None, environment="development", **kwargs).is_production  # type: ignore[call-arg]
