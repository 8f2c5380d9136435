"""What the platform is made of: its services, their ports, the stack's configuration.

`nerve dev` uses the defaults (fixed ports, the devserver on :8288); the end-to-end tests pick
free ports, an engine, one shared database. `stack.Stack` starts what a `StackConfig` describes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the platform."""

    name: str  # process name, also the app id (what the engine calls the app)
    package: str  # python package holding `app.create_app`
    default_port: int

    @property
    def factory(self) -> str:
        return f"{self.package}.app:create_app"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("ingest-gateway", "ingest_gateway", 8000),
    ServiceSpec("support-worker", "support_worker", 8001),
    ServiceSpec("risk-worker", "risk_worker", 8002),
    ServiceSpec("notifier", "notifier", 8003),
)
ENGINE_PORT = 8288

# Local-only credentials so the webhooks and decision links work out of the box in development.
# Applied only when neither the environment nor `.env` sets the variable; the services refuse
# these placeholder-looking values outside development/test.
DEV_DEFAULTS: dict[str, str] = {
    "POSTMARK_INBOUND_USERNAME": "postmark",
    "POSTMARK_INBOUND_PASSWORD": "dev-postmark-password",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev_nerve_local_only",
    "DECISION_TOKEN_SECRET": "dev-decision-token-secret",
    "ADMIN_API_TOKEN": "dev-admin-token",
}


class StackError(RuntimeError):
    """A part of the stack failed to start or died; the message names it and its log."""


class StackInterrupted(StackError):
    """Startup was interrupted (Ctrl-C / SIGTERM); what had started was stopped."""


@dataclass
class StackConfig:
    database_url: str
    state_dir: Path  # logs and the devserver database live here
    host: str = "127.0.0.1"
    engine_port: int = ENGINE_PORT
    ports: dict[str, int] = field(
        default_factory=lambda: {s.name: s.default_port for s in SERVICES}
    )
    external_engine_url: str | None = None  # use this engine instead of starting the devserver
    # Another engine to start instead of the devserver (e.g. `inngest start ...`), answering
    # /health on engine_port; it sees engine_env, not the services' variables.
    engine_argv: list[str] | None = None
    engine_env: dict[str, str] = field(default_factory=dict)
    engine_in_memory: bool = False
    engine_database_url: str | None = None
    retry_interval: float | None = None  # devserver --retry-interval (tests: 1)
    services: tuple[ServiceSpec, ...] = SERVICES
    extra_env: dict[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()  # inherited variables the children must not see
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    python: str = sys.executable
    cwd: Path | None = None
    # The stack owns each service's listening socket, so a restarted service keeps its address
    # and requests made while it boots wait instead of being refused (see HeldSocket).
    hold_service_sockets: bool = False
