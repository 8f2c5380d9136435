"""The whole platform as managed processes: migrations, the engine, the four services.

Used by `nerve dev` (fixed ports, Ctrl-C stops everything) and by the end-to-end tests (free
ports, one shared database, services killed and restarted on purpose). Every child runs in its own
process group so stopping it also stops anything it spawned; nothing is orphaned.

Entry points are the ones the Dockerfiles run: `python -m nerve_migrations upgrade|seed`,
`python -m devserver ...` and `python -m uvicorn <pkg>.app:create_app --factory` per service.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .processes import (
    HeldSocket,
    ManagedProcess,
    dotenv_keys,
    raise_keyboard_interrupt_on_termination,
    signals_deferred,
)
from .stack_config import (
    DEV_DEFAULTS,
    ENGINE_PORT,
    SERVICES,
    ServiceSpec,
    StackConfig,
    StackError,
    StackInterrupted,
)

__all__ = [
    "DEV_DEFAULTS",
    "ENGINE_PORT",
    "SERVICES",
    "ManagedProcess",
    "ServiceSpec",
    "Stack",
    "StackConfig",
    "StackError",
    "StackInterrupted",
    "dotenv_keys",
    "raise_keyboard_interrupt_on_termination",
]


class Stack:
    """Start, watch and stop the platform."""

    def __init__(
        self,
        config: StackConfig,
        *,
        echo: Callable[[str], None] | None = None,
        interrupted: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.echo = echo or (lambda _msg: None)
        # Polled during startup (signal handlers only set a flag: an exception raised inside
        # Popen could leave a started child nobody knows about).
        self.interrupted = interrupted or (lambda: False)
        self.engine: ManagedProcess | None = None
        self.services: dict[str, ManagedProcess] = {}
        self.sockets: dict[str, HeldSocket] = {}

    # -- addresses ---------------------------------------------------------------------------

    @property
    def engine_url(self) -> str:
        if self.config.external_engine_url:
            return self.config.external_engine_url.rstrip("/")
        return f"http://{self.config.host}:{self.config.engine_port}"

    def service_url(self, name: str) -> str:
        defaults = {spec.name: spec.default_port for spec in (*SERVICES, *self.config.services)}
        return f"http://{self.config.host}:{self.config.ports.get(name, defaults.get(name))}"

    def serve_url(self, name: str) -> str:
        return f"{self.service_url(name)}/api/inngest"

    # -- environment -------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.config.database_url,
                "INNGEST_DEV": "1",
                "INNGEST_BASE_URL": self.engine_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        # The engine's own signing/event keys never leak into dev-mode services.
        for key in ("INNGEST_SIGNING_KEY", "INNGEST_SERVE_ORIGIN"):
            env.pop(key, None)
        env.setdefault("INNGEST_EVENT_KEY", "dev")
        configured = dotenv_keys((self.config.cwd or Path.cwd()) / ".env")
        for key, value in DEV_DEFAULTS.items():
            if key not in env and key not in configured:
                env[key] = value
        for key in self.config.unset_env:
            env.pop(key, None)
        env.update(self.config.extra_env)
        return env

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = self.base_env()
        env.update(
            {
                "SERVICE_NAME": spec.name,
                "PORT": str(self.config.ports[spec.name]),
                "NERVE_GATEWAY_URL": self.service_url("ingest-gateway"),
                "GATEWAY_PUBLIC_URL": self.service_url("ingest-gateway"),
            }
        )
        env.update(self.config.service_env.get(spec.name, {}))
        return env

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """`python -m nerve_migrations upgrade`: alembic upgrade head + seed (idempotent)."""
        self.echo("migrations: upgrade + seed")
        result = subprocess.run(
            [self.config.python, "-m", "nerve_migrations", "upgrade"],
            env=self.base_env(),
            cwd=self.config.cwd,
            capture_output=True,
            text=True,
            timeout=180,
        )
        self._check_interrupt()  # a terminal's Ctrl-C also reaches the migrations process
        if result.returncode != 0:
            raise StackError(
                f"nerve_migrations upgrade failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def start_engine(self, *, timeout: float = 60.0) -> None:
        self.launch_engine()
        self.wait_engine(timeout=timeout)

    def wait_engine(self, *, timeout: float = 60.0) -> None:
        if self.engine is not None:
            self._wait_http(f"{self.engine_url}/health", self.engine, timeout)

    def launch_engine(self) -> None:
        if self.config.external_engine_url:
            return
        if self.engine is None and self.config.engine_argv:
            env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
            env.update(self.config.engine_env)
            name = Path(self.config.engine_argv[0]).name
            self.engine = ManagedProcess(
                name,
                list(self.config.engine_argv),
                env,
                self.config.state_dir / "logs" / f"{name}.log",
                cwd=self.config.cwd,
            )
        if self.engine is None:
            argv = [
                self.config.python,
                "-m",
                "devserver",
                "--host",
                self.config.host,
                "--port",
                str(self.config.engine_port),
                "--no-discovery",
            ]
            if self.config.engine_in_memory:
                argv.append("--in-memory")
            else:
                db = self.config.engine_database_url or (
                    f"sqlite+aiosqlite:///{self.config.state_dir / 'devserver.db'}"
                )
                argv += ["--database-url", db]
            if self.config.retry_interval is not None:
                argv += ["--retry-interval", str(self.config.retry_interval)]
            for spec in self.config.services:
                argv += ["-u", self.serve_url(spec.name)]
            env = self.base_env()
            for key in list(env):
                # The devserver reads INNGEST_<FLAG>; keep the services' variables away from it.
                if key in ("INNGEST_BASE_URL", "INNGEST_DEV", "INNGEST_EVENT_KEY"):
                    env.pop(key)
            self.engine = ManagedProcess(
                "devserver",
                argv,
                env,
                self.config.state_dir / "logs" / "devserver.log",
                cwd=self.config.cwd,
            )
        self.echo(f"engine: starting {self.engine.name} on {self.engine_url}")
        self.engine.start()

    def stop_engine(self) -> None:
        if self.engine is not None:
            self.engine.stop()

    def kill_engine(self) -> None:
        if self.engine is not None:
            self.engine.kill()

    def start_service(self, name: str, *, timeout: float = 90.0) -> None:
        self.launch_service(name)
        self.wait_service(name, timeout=timeout)

    def wait_service(self, name: str, *, timeout: float = 90.0) -> None:
        self._wait_http(f"{self.service_url(name)}/readyz", self.services[name], timeout)

    def launch_service(self, name: str) -> None:
        spec = next(s for s in self.config.services if s.name == name)
        process = self.services.get(name)
        if process is None:
            argv = [self.config.python, "-m", "uvicorn", spec.factory, "--factory"]
            pass_fds: tuple[int, ...] = ()
            if self.config.hold_service_sockets:
                held = self.sockets.get(name) or HeldSocket(
                    self.config.host, self.config.ports[name]
                )
                self.sockets[name] = held
                argv += ["--fd", str(held.fd)]
                pass_fds = (held.fd,)
            else:
                argv += ["--host", self.config.host, "--port", str(self.config.ports[name])]
            process = ManagedProcess(
                name,
                [*argv, "--no-access-log"],
                self.service_env(spec),
                self.config.state_dir / "logs" / f"{name}.log",
                cwd=self.config.cwd,
                pass_fds=pass_fds,
            )
            self.services[name] = process
        self.echo(f"service: starting {name} on {self.service_url(name)}")
        process.start()

    def sync_service(self, name: str, *, timeout: float = 30.0) -> None:
        """PUT on the service's Inngest endpoint: the SDK registers itself with the engine."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_interrupt()
            try:
                response = httpx.put(self.serve_url(name), timeout=15.0)
                body = response.json() if response.content else {}
                if response.status_code == 200 and not (
                    isinstance(body, Mapping) and body.get("error")
                ):
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except (httpx.HTTPError, ValueError) as error:
                last = str(error)
            time.sleep(0.3)
        raise StackError(f"{name}: sync with the engine failed: {last}")

    def start(self, *, migrate: bool = True) -> None:
        """Migrations + seed, the engine, every service, each synced; raises StackError."""
        try:
            # The engine boots while the migrations run; the services boot side by side.
            self.launch_engine()
            if migrate:
                self.migrate()
            for spec in self.config.services:
                self._check_interrupt()
                self.launch_service(spec.name)
            self.wait_engine()
            for spec in self.config.services:
                self.wait_service(spec.name)
            self.sync_all()
        except BaseException:
            self.stop()
            raise

    def sync_all(self) -> None:
        self._check_interrupt()
        with ThreadPoolExecutor(max_workers=len(self.config.services) or 1) as pool:
            for future in [pool.submit(self.sync_service, s.name) for s in self.config.services]:
                future.result()

    def restart_service(
        self, name: str, *, env: Mapping[str, str] | None = None, kill: bool = False
    ) -> None:
        """Stop (or SIGKILL) a service, optionally change its environment, start it again on
        the same port and sync it with the engine."""
        process = self.services[name]
        if kill:
            process.kill()
        else:
            process.stop()
        if env is not None:
            spec = next(s for s in self.config.services if s.name == name)
            process.env = {**self.service_env(spec), **env}
        self.start_service(name)
        self.sync_service(name)

    def stop_service(self, name: str) -> None:
        process = self.services.get(name)
        if process is not None:
            process.stop()

    def kill_service(self, name: str) -> None:
        process = self.services.get(name)
        if process is not None:
            process.kill()

    def stop(self) -> None:
        """Services first (they may flush to the engine), then the engine. A second Ctrl-C or
        SIGTERM waits until everything is stopped."""
        with signals_deferred():
            for process in self.services.values():
                process.stop()
            for held in self.sockets.values():
                held.close()
            if self.engine is not None:
                self.engine.stop()

    def dead(self) -> list[ManagedProcess]:
        """Managed processes that exited on their own."""
        found = [p for p in self.services.values() if p.process is not None and not p.alive]
        if self.engine is not None and self.engine.process is not None and not self.engine.alive:
            found.append(self.engine)
        return found

    # -- helpers -----------------------------------------------------------------------------

    def _check_interrupt(self) -> None:
        if self.interrupted():
            raise StackInterrupted("startup interrupted")

    def _wait_http(self, url: str, process: ManagedProcess, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_interrupt()
            if not process.alive:
                raise StackError(
                    f"{process.name} exited with {process.process and process.process.returncode}"
                    f" before it was ready; log {process.log_path}:\n{process.log_tail()}"
                )
            try:
                response = httpx.get(url, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                last = str(error)
            time.sleep(0.15)
        raise StackError(
            f"{process.name} not ready at {url} after {timeout:.0f}s ({last}); "
            f"log {process.log_path}:\n{process.log_tail()}"
        )
