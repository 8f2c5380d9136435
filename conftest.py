"""Repository-wide test hygiene.

Every package's tests run in one pytest session, so a test that changes the process environment
(an in-process CLI reading `.env`, a settings test) would change what every later test sees, e.g.
which engine `INNGEST_BASE_URL` names. Each test gets the environment back as it found it.

Every httpx client of the test process shares one default SSL context (see below).

`make test` runs the session on pytest-xdist workers (`-n 2 --dist loadfile`: a file's tests stay
on one worker, with its module fixtures). A worker must see the environment the controller was
started with: see `pytest_configure_node` below.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Set in a pytest-xdist worker by the time its first conftest is imported, though not in the
# controller's environment (LINES=24, COLUMNS=80): a `rich` Console created at import would
# then keep 80 columns where the CLI tests set COLUMNS for each invocation.
TERMINAL_SIZE_VARIABLES = ("COLUMNS", "LINES")


def _share_httpx_default_ssl_context() -> None:
    """Every httpx client of the test process gets the same default SSL context.

    Building one loads the whole CA bundle (~40 ms of CPU), and the tests build thousands: each
    `inngest.Inngest` makes two httpx clients, each service app one, many helpers one per request
    or poll (about 2,000 contexts, 1-2 minutes of CPU, per `make test`). Only the default case
    (`verify=True`, no client certificate) is shared, keyed by what it reads from the
    environment; the tests speak plain HTTP to 127.0.0.1, so no connection uses it anyway. The
    processes the tests start (services, engines) are not touched.
    """
    try:
        from httpx._transports import default as transports
    except ImportError:  # pragma: no cover - httpx moved it: the tests only get slower
        return
    build: Callable[..., ssl.SSLContext] | None = getattr(transports, "create_ssl_context", None)
    if build is None:  # pragma: no cover
        return
    shared: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    def create_ssl_context(
        verify: Any = True, cert: Any = None, trust_env: bool = True
    ) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        key = (
            trust_env,
            os.environ.get("SSL_CERT_FILE") if trust_env else None,
            os.environ.get("SSL_CERT_DIR") if trust_env else None,
        )
        if key not in shared:
            shared[key] = build(verify=True, cert=None, trust_env=trust_env)
        return shared[key]

    transports.create_ssl_context = create_ssl_context  # type: ignore[attr-defined]


_share_httpx_default_ssl_context()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller side (pytest-xdist): hand each worker the controller's terminal size vars."""
    node.workerinput["terminal_size_environment"] = {
        name: os.environ.get(name) for name in TERMINAL_SIZE_VARIABLES
    }


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    for name, value in workerinput.get("terminal_size_environment", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _restore_process_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)
