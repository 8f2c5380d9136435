"""`.env.example` documents every variable the services read (generated from their Settings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_is_in_step_with_the_settings_classes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "env_example.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_every_settings_field_appears_in_env_example() -> None:
    from ingest_gateway.settings import GatewaySettings
    from notifier.settings import NotifierSettings
    from risk_worker.settings import RiskSettings
    from support_worker.settings import SupportSettings

    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    for settings_class in (GatewaySettings, SupportSettings, RiskSettings, NotifierSettings):
        missing = {name.upper() for name in settings_class.model_fields} - documented
        assert not missing, f"{settings_class.__name__} fields missing from .env.example: {missing}"
