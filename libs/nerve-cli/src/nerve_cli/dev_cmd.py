"""`nerve dev` (the whole platform, one command, one Ctrl-C) and `nerve new-service`."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.panel import Panel

from .scaffold import ScaffoldError, scaffold_service
from .stack import (
    ENGINE_PORT,
    SERVICES,
    ServiceSpec,
    Stack,
    StackConfig,
    StackError,
    StackInterrupted,
)

console = Console()
err = Console(stderr=True)


def banner(stack: Stack) -> str:
    gateway = stack.service_url("ingest-gateway")
    engine_flag = "" if stack.engine_url.endswith(":8288") else f" --engine-url {stack.engine_url}"
    targets = engine_flag
    if not gateway.endswith(":8000"):
        targets += f" --gateway-url {gateway}"
    default_db = f"sqlite+aiosqlite:///{Path.cwd() / '.nerve' / 'nerve.db'}"
    if stack.config.database_url not in (default_db, "sqlite+aiosqlite:///.nerve/nerve.db"):
        targets += f" --database-url {stack.config.database_url}"
    decide_flag = "" if gateway.endswith(":8000") else f" --gateway-url {gateway}"
    db_flag = (
        "" if "--database-url" not in targets else f" --database-url {stack.config.database_url}"
    )
    lines = [
        f"dashboard + engine   {stack.engine_url}",
        f"gateway              {stack.service_url('ingest-gateway')}"
        f"   (docs {stack.service_url('ingest-gateway')}/docs)",
    ]
    for spec in stack.config.services:
        if spec.name != "ingest-gateway":
            lines.append(f"{spec.name:<20} {stack.service_url(spec.name)}/readyz")
    lines += [
        f"database             {stack.config.database_url}",
        f"logs                 {stack.config.state_dir / 'logs'}",
        f"model                {'OpenAI' if os.environ.get('OPENAI_API_KEY') else 'offline'}",
        "",
        "fire a sample email (the agent drafts a reply):",
        '  uv run nerve email --customer-id cust_001 --body "How do I add two seats?" --wait'
        f"{targets}",
        # ord_1004 (99.00 USD) is above the default auto-approve limit (REFUND_AUTO_APPROVE_MAX_
        # CENTS, 50.00): the refund gate always asks a human, so the reviewer loop is visible.
        "a refund above the auto-approve limit waits for a reviewer:",
        f'  uv run nerve email --customer-id cust_002 --body "Please refund ord_1004"{targets}',
        f"decide it: the approve link on the dashboard ({stack.engine_url}/notifications), or",
        f"  uv run nerve pending{db_flag}   then   uv run nerve decide approve <request id>"
        f"{decide_flag}",
        f"then: uv run nerve runs list{engine_flag}   |   Ctrl-C stops everything",
    ]
    return "\n".join(lines)


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on (host, port). SO_REUSEADDR as uvicorn sets it, so a port
    in TIME_WAIT after a restart counts as free, a listening one as taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _who_answers(host: str, port: int) -> str:
    """A hint at what holds the port: an Inngest engine answers GET /health with 200."""
    try:
        response = httpx.get(f"http://{host}:{port}/health", timeout=1.0)
    except httpx.HTTPError:
        return "another program"
    if response.status_code == 200:
        return "an engine or a Nerve service (a previous `nerve dev`?)"
    return f"an HTTP server ({response.headers.get('server', 'unknown')})"


def busy_ports_message(host: str, wanted: dict[str, int]) -> str | None:
    """None when every port is free, else what is taken and what to do about it. Checked before
    anything starts: otherwise the services would register with whatever engine holds the
    port, and the banner would claim a platform that is not ours."""
    taken = [(name, port) for name, port in wanted.items() if port_in_use(host, port)]
    if not taken:
        return None
    lines = [
        f"port {port} ({name}) on {host} is already in use by {_who_answers(host, port)}"
        for name, port in taken
    ]
    lines.append(
        "stop what holds it (e.g. the other `nerve dev`: Ctrl-C in its terminal), or choose "
        "other ports: nerve dev --engine-port N --base-port M (the gateway takes M, the workers "
        "the next three; --with services keep their own port)"
    )
    return "\n".join(lines)


def parse_extra_service(value: str) -> tuple[ServiceSpec, int]:
    """`name=package:port` -> (spec, port)."""
    name, _, rest = value.partition("=")
    package, _, port = rest.partition(":")
    if not (name and package and port.isdigit()):
        raise typer.BadParameter(f"--with {value!r}: expected name=package:port")
    return ServiceSpec(name, package, int(port)), int(port)


def dev(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="System of record (default: SQLite under .nerve/).",
        ),
    ] = None,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Logs and the engine's database.")
    ] = Path(".nerve"),
    engine_port: Annotated[int, typer.Option("--engine-port")] = ENGINE_PORT,
    base_port: Annotated[
        int, typer.Option("--base-port", help="gateway port; the workers take the next three.")
    ] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    extra: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            help="Also run a workspace service: name=package:port, e.g. "
            "loyalty-worker=loyalty_worker:8010 (repeatable).",
        ),
    ] = None,
) -> None:
    """Run the platform: migrations + seed, the devserver, the four services; Ctrl-C stops all."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{state_dir / 'nerve.db'}"
    ports = {spec.name: base_port + index for index, spec in enumerate(SERVICES)}
    services = list(SERVICES)
    for item in extra or []:
        spec, port = parse_extra_service(item)
        services.append(spec)
        ports[spec.name] = port
    busy = busy_ports_message(host, {"devserver": engine_port, **ports})
    if busy:
        err.print(f"[red]{busy}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Only a flag: the supervisor polls it (during startup too) and stops everything.
        nonlocal stopping
        stopping = True

    stack = Stack(
        StackConfig(
            database_url=url,
            state_dir=state_dir,
            host=host,
            engine_port=engine_port,
            ports=ports,
            services=tuple(services),
            # The dashboard's Notifications page reads the notifier's sinks (and the reviewer's
            # decision links) from the system of record.
            extra_env={"NERVE_DATABASE_URL": url},
        ),
        echo=lambda message: console.print(f"[dim]{message}[/dim]"),
        interrupted=lambda: stopping,
    )
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except StackInterrupted:
            err.print("interrupted during startup; stopped")
            raise typer.Exit(130) from None
        except StackError as error:
            err.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        console.print(Panel(banner(stack), title="Nerve is running", border_style="green"))
        while not stopping:
            dead = stack.dead()
            if dead:
                for process in dead:
                    err.print(
                        f"[red]{process.name} exited; last log lines:[/red]\n{process.log_tail()}"
                    )
                raise typer.Exit(1)
            time.sleep(0.5)
        console.print("stopping...")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("stopped")


def new_service(
    name: Annotated[str, typer.Argument(help="Service name, e.g. loyalty-worker.")],
    event: Annotated[
        str, typer.Option("--event", help="Catalog event the first function subscribes to.")
    ] = "support/draft.created",
    dest: Annotated[
        Path, typer.Option("--dest", help="Parent folder (default: services/).")
    ] = Path("services"),
    port: Annotated[int, typer.Option("--port", help="Its dev port.")] = 8010,
) -> None:
    """Scaffold a new service that subscribes to a catalog event (see docs/adding-a-service.md)."""
    try:
        created = scaffold_service(name, dest=dest, event=event, port=port)
    except ScaffoldError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created {created}")
    console.print(
        "next: add it to \\[tool.uv.workspace] members in the root pyproject.toml, then "
        "`uv sync --all-packages --inexact` (docs/adding-a-service.md)"
    )
