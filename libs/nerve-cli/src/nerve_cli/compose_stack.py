"""The compose file's production stack as local processes, read from `docker-compose.yml` itself.

Used by the e2e harness (`NERVE_E2E_ENGINE=binary` and `docker`): the `inngest` service's own
command line and the services' own environment, with `${VAR}` substituted from one set of
variables (what a user puts in `.env`) and the compose network's host names rewritten to where
each part really listens. Nothing here copies a flag or a setting from the compose file: change
the file and the tests follow.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ComposeError",
    "ComposeFile",
    "Endpoint",
    "ProductionStack",
    "production_stack",
    "rewrite_flags",
    "rewrite_urls",
    "substitute",
]

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, ${VAR:+alt},
# ${VAR+alt}, $VAR, and $$ (a literal dollar), as docker compose interpolates them.
_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# scheme://[userinfo@]host[:port][/path]
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:(?P<userinfo>[^@/\s]*)@)?"
    r"(?P<host>[A-Za-z0-9._-]+)(?::(?P<port>\d+))?(?P<path>/[^?#\s]*)?"
)


class ComposeError(ValueError):
    """The compose file lacks what is asked, or a required variable is missing."""


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Interpolate `text` the way docker compose does; `${VAR:?msg}` unset raises ComposeError."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        if op is None:
            return value or ""
        empty_counts = op.startswith(":")
        is_set = value is not None and (value != "" or not empty_counts)
        if op.endswith("-"):
            return value if is_set and value is not None else substitute(arg, variables)
        if op.endswith("?"):
            if not is_set or value is None:
                raise ComposeError(f"{name} is required: {arg or 'not set'}")
            return value
        return substitute(arg, variables) if is_set else ""  # :+ / +

    return _VARIABLE.sub(replace, text)


def variable_names(text: str) -> set[str]:
    return {
        m.group("name") or m.group("bare") for m in _VARIABLE.finditer(text) if m.group(0) != "$$"
    }


@dataclass(frozen=True)
class Endpoint:
    """Where a compose network address (`host:port`) really is: `netloc` replaces `host:port`,
    `userinfo` (when given) the credentials, and `paths` maps whole paths (a database name,
    a Redis db number) to new ones."""

    netloc: str
    userinfo: str | None = None
    paths: Mapping[str, str] = field(default_factory=dict)


def rewrite_urls(text: str, endpoints: Mapping[str, Endpoint]) -> str:
    """Every URL in `text` whose `host:port` is a key of `endpoints`, pointed at that endpoint."""

    def replace(match: re.Match[str]) -> str:
        endpoint = endpoints.get(f"{match.group('host')}:{match.group('port')}")
        if endpoint is None:
            return match.group(0)
        userinfo = endpoint.userinfo if endpoint.userinfo is not None else match.group("userinfo")
        path = match.group("path") or ""
        path = endpoint.paths.get(path, path)
        credentials = f"{userinfo}@" if userinfo else ""
        return f"{match.group('scheme')}://{credentials}{endpoint.netloc}{path}"

    return _URL.sub(replace, text)


def rewrite_flags(argv: list[str], rewrite: Callable[[str, str], str | None]) -> list[str]:
    """`--flag=value` and `--flag value` arguments with `rewrite(flag, value)` applied (None keeps
    the value); positional arguments unchanged."""
    result: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg.startswith("--") and "=" in arg:
            flag, value = arg[2:].split("=", 1)
            new = rewrite(flag, value)
            result.append(f"--{flag}={value if new is None else new}")
        elif arg.startswith("--") and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            flag, value = arg[2:], argv[index + 1]
            new = rewrite(flag, value)
            result += [arg, value if new is None else new]
            index += 1
        else:
            result.append(arg)
        index += 1
    return result


@dataclass(frozen=True)
class ComposeFile:
    """A parsed compose file (YAML anchors and `<<` merges resolved by the loader)."""

    path: Path
    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> ComposeFile:
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, Mapping) or not isinstance(data.get("services"), Mapping):
            raise ComposeError(f"{path}: no services")
        return cls(path, data)

    def service(self, name: str) -> Mapping[str, Any]:
        service = self.data["services"].get(name)
        if not isinstance(service, Mapping):
            raise ComposeError(f"{self.path}: no service {name!r}")
        return service

    def variables(self) -> set[str]:
        """Every variable the file interpolates."""
        return variable_names(yaml.safe_dump(dict(self.data)))

    def image(self, name: str, variables: Mapping[str, str]) -> str:
        return substitute(str(self.service(name)["image"]), variables)

    def command(self, name: str, variables: Mapping[str, str]) -> list[str]:
        command = self.service(name).get("command")
        if command is None:
            raise ComposeError(f"{self.path}: service {name!r} has no command")
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        return [substitute(arg, variables) for arg in argv]

    def environment(self, name: str, variables: Mapping[str, str]) -> dict[str, str]:
        """The service's environment. A bare `VAR:` (pass-through) takes `variables[VAR]` when
        set and is left out otherwise, as compose does with the shell's environment."""
        raw = self.service(name).get("environment") or {}
        if isinstance(raw, list):
            raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
        env: dict[str, str] = {}
        for key, value in raw.items():
            if value is None:
                if key in variables:
                    env[key] = variables[key]
                continue
            env[str(key)] = substitute(str(value), variables)
        return env

    def url_paths(self, netloc: str, variables: Mapping[str, str]) -> set[str]:
        """Paths of every URL the file points at `netloc` (compose `host:port`): the database
        names on `postgres:5432`, the db numbers on `redis:6379`."""
        text = substitute(yaml.safe_dump(dict(self.data)), variables)
        return {
            m.group("path") or ""
            for m in _URL.finditer(text)
            if f"{m.group('host')}:{m.group('port')}" == netloc
        }


@dataclass(frozen=True)
class ProductionStack:
    """What the compose file runs, as local processes: the engine's argv and each service's
    environment, every compose address rewritten to a local one."""

    engine_argv: list[str]
    engine_port: int
    service_env: dict[str, dict[str, str]]

    def shared(self, key: str) -> str:
        """A variable every service gets the same value of (DATABASE_URL, INNGEST_EVENT_KEY)."""
        values = {env.get(key, "") for env in self.service_env.values()}
        if len(values) != 1 or not (value := values.pop()):
            raise ComposeError(f"the services disagree on or lack {key}")
        return value


def production_stack(
    compose: ComposeFile,
    variables: Mapping[str, str],
    *,
    inngest_bin: str,
    engine_port: int,
    service_ports: Mapping[str, int],
    endpoints: Mapping[str, Endpoint],
    engine_service: str = "inngest",
    host: str = "127.0.0.1",
) -> ProductionStack:
    """The `engine_service` command (its executable replaced by `inngest_bin`, bound to
    host:engine_port) and the environment of every service in `service_ports`. `endpoints` say
    where the backing services (Postgres, Redis) are; the engine and the services are added."""
    argv = compose.command(engine_service, variables)
    container_port = "8288"
    for index, arg in enumerate(argv):
        if arg.startswith("--port="):
            container_port = arg.split("=", 1)[1]
        elif arg == "--port" and index + 1 < len(argv):
            container_port = argv[index + 1]
    every = dict(endpoints)
    every[f"{engine_service}:{container_port}"] = Endpoint(f"{host}:{engine_port}")
    for name, port in service_ports.items():
        service_port = compose.environment(name, variables).get("PORT")
        if service_port:
            every[f"{name}:{service_port}"] = Endpoint(f"{host}:{port}")

    def flag(name: str, value: str) -> str | None:
        if name == "host":
            return host
        if name == "port":
            return str(engine_port)
        return rewrite_urls(value, every)

    engine_argv = [inngest_bin, *rewrite_flags(argv[1:], flag)]
    service_env = {
        name: {
            key: rewrite_urls(value, every)
            for key, value in compose.environment(name, variables).items()
        }
        for name in service_ports
    }
    service_env = {
        name: {**env, "PORT": str(service_ports[name])} for name, env in service_env.items()
    }
    return ProductionStack(engine_argv, engine_port, service_env)
