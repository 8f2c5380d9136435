"""Repository-wide test hygiene.

Every package's tests run in one pytest session, so a test that changes the process environment
(an in-process CLI reading `.env`, a settings test) would change what every later test sees, e.g.
which engine `INNGEST_BASE_URL` names. Each test gets the environment back as it found it.

Every httpx client of the test process shares one default SSL context (see below).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest


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


@pytest.fixture(autouse=True)
def _restore_process_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)
