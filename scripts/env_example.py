"""Write (or `--check`) `.env.example` from the services' Settings classes.

Every variable a service reads is a field of its pydantic-settings class, so the example file is
generated from them: it cannot forget a variable, and `--check` (run by the test suite) fails when a
Settings class gains a field the committed file does not document.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ingest_gateway.settings import GatewaySettings
from notifier.settings import NotifierSettings
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from risk_worker.settings import RiskSettings
from service_kit.settings import ServiceSettings
from support_worker.settings import SupportSettings

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / ".env.example"

# No secret has a value here: every value in the repository is published, and production refuses
# published values. `make dev` fills in its own development-only secrets; `make compose-env`
# writes a .env with fresh random ones for `docker compose up`.
# INNGEST_SIGNING_KEY / INNGEST_EVENT_KEY stay commented out: set, they switch the devserver of
# `make dev` to `inngest start` behaviour (signed calls, enforced keys).

# The base class documents its variables in its docstring rather than per field.
BASE_DESCRIPTIONS = {
    "SERVICE_NAME": "service name used in logs and metrics",
    "ENVIRONMENT": "development | test | production (production refuses placeholder secrets)",
    "DATABASE_URL": "system of record: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
    "REDIS_URL": "unset = in-process fallbacks (rate limiting)",
    "LOG_LEVEL": "DEBUG | INFO | WARNING | ERROR",
    "LOG_JSON": "true = one JSON object per line; false = console renderer",
    "PORT": "HTTP port",
    "HTTP_TIMEOUT_SECONDS": "timeout of the shared outbound HTTP client",
    "INNGEST_DEV": "1/true or a dev server URL = dev mode; 0/false = production mode (needs a "
    "signing key); unset = dev unless ENVIRONMENT=production",
    "INNGEST_BASE_URL": "engine origin (API + Event API), e.g. http://127.0.0.1:8288",
    "INNGEST_SIGNING_KEY": "required in production mode, in the SDK's form "
    "signkey-<env>-<even-length hex> (compose derives it from INNGEST_SIGNING_KEY_HEX)",
    "INNGEST_EVENT_KEY": "needed to send events in production mode; even-length hex for "
    "`inngest start --event-key`",
    "INNGEST_SERVE_ORIGIN": "the origin the engine calls this service on (Docker DNS names)",
}

# Per-service values: set once in a shared .env they would give every service the same one.
PER_SERVICE = {"PORT", "SERVICE_NAME"}

ENGINE_VARIABLES = [
    ("INNGEST_PORT", "8288", "devserver port (`-p`)"),
    ("INNGEST_HOST", "127.0.0.1", "devserver bind address (`--host`)"),
    ("INNGEST_SDK_URL", "", "comma-separated app URLs the devserver syncs (`-u`)"),
    ("INNGEST_NO_DISCOVERY", "", "true = no autodiscovery of local apps"),
    ("INNGEST_NO_POLL", "", "true = do not re-sync apps periodically"),
    ("INNGEST_POLL_INTERVAL", "5", "seconds between app syncs"),
    ("INNGEST_RETRY_INTERVAL", "0", "0 = Inngest's backoff table; N = retry after N seconds"),
    ("INNGEST_QUEUE_WORKERS", "100", "concurrent SDK calls"),
    ("INNGEST_DATABASE_URL", "", "devserver state (default .nerve/devserver.db; Postgres works)"),
    ("INNGEST_IN_MEMORY", "", "true = keep nothing after exit"),
    ("INNGEST_LOG_LEVEL", "warning", "devserver log level"),
    ("NERVE_DATABASE_URL", "", "system of record shown on the dashboard's Notifications page"),
    ("DEVSERVER_REDACT_FIELDS", "", "comma-separated field names the dashboard redacts"),
    ("DEVSERVER_DOCS_DIRS", "", "extra documentation folders for the MCP doc tools"),
    ("DEVSERVER_MCP_ALLOWED_HOSTS", "", "extra hosts allowed to call /mcp"),
]

COMPOSE_VARIABLES = [
    ("POSTGRES_PASSWORD", "", "password of the compose Postgres (required; no default)"),
    (
        "INNGEST_SIGNING_KEY_HEX",
        "",
        "signing key as bare even-length hex, the form `inngest start --signing-key` accepts; "
        "the services get signkey-prod-<this hex> (required; no default)",
    ),
    ("NERVE_BIND_ADDRESS", "127.0.0.1", "address the published ports listen on (0.0.0.0 = all)"),
    ("NERVE_POSTGRES_PORT", "5432", "host port of the compose Postgres"),
]

CLI_VARIABLES = [
    ("NERVE_GATEWAY_URL", "", "gateway the CLI posts to (default http://127.0.0.1:8000)"),
    (
        "NERVE_CLI_DATABASE_URL",
        "",
        "system of record as the CLI on this machine reaches it (compose: postgresql+asyncpg://"
        "postgres:<POSTGRES_PASSWORD>@127.0.0.1:5432/nerve); unset = DATABASE_URL",
    ),
]

SECTIONS: list[tuple[str, type[BaseSettings]]] = [
    ("Every service (service-kit base settings)", ServiceSettings),
    ("ingest-gateway (port 8000)", GatewaySettings),
    ("support-worker (port 8001)", SupportSettings),
    ("risk-worker (port 8002)", RiskSettings),
    ("notifier (port 8003)", NotifierSettings),
]


def _render_default(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def render() -> str:
    lines = [
        "# Nerve environment variables, generated by `uv run python scripts/env_example.py`.",
        "# Values below are the defaults. No secret has one: `make dev` needs none, and",
        "# `make compose-env` writes a .env with fresh random secrets for `docker compose up`",
        "# (services in ENVIRONMENT=production refuse placeholders and any value published in",
        "# this repository, this file included).",
        "",
    ]
    seen: set[str] = set()
    for title, settings_class in SECTIONS:
        block: list[str] = []
        for field_name, field in settings_class.model_fields.items():
            variable = field_name.upper()
            if variable in seen:
                continue
            seen.add(variable)
            description = (field.description or BASE_DESCRIPTIONS.get(variable, "")).strip()
            description = description.replace("\n", " ")
            if description.upper().startswith(variable + ":"):
                description = description[len(variable) + 1 :].strip()
            value = None if field.is_required() else field.get_default(call_default_factory=True)
            default = _render_default(value)
            if variable in PER_SERVICE:
                description = f"{description} (each service has its own default)".strip()
                default = ""
            if description:
                block.append(f"# {description}")
            block.append(f"{variable}={default}" if default else f"# {variable}=")
        if block:
            lines += [f"# ---- {title} " + "-" * max(0, 70 - len(title)), *block, ""]
    for title, variables in (
        ("The embedded devserver (`make dev`, `uv run devserver`)", ENGINE_VARIABLES),
        ("docker compose (`make compose-env` writes these and the secrets)", COMPOSE_VARIABLES),
        ("the `nerve` CLI (reads .env from the working directory)", CLI_VARIABLES),
    ):
        lines.append(f"# ---- {title} " + "-" * max(0, 70 - len(title)))
        for variable, default, description in variables:
            lines.append(f"# {description}")
            lines.append(f"{variable}={default}" if default else f"# {variable}=")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if .env.example is stale")
    args = parser.parse_args()
    wanted = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != wanted:
            print(
                ".env.example is stale: run `uv run python scripts/env_example.py`",
                file=sys.stderr,
            )
            return 1
        print(".env.example documents every variable")
        return 0
    TARGET.write_text(wanted)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
