"""`python -m ingest_gateway`: serve the gateway with uvicorn on its port (default 8000),
in GATEWAY_WORKERS processes (default 1; on a dedicated host, one per core)."""

from __future__ import annotations

import uvicorn

from .settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    # An import string: each worker process builds its own app (its own pools and relay).
    # Loop and HTTP parser stay uvicorn's "auto": uvloop and httptools when installed.
    uvicorn.run(
        "ingest_gateway.app:create_app",
        factory=True,
        host="0.0.0.0",
        port=settings.port,
        workers=settings.gateway_workers,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
