"""`python -m ingest_gateway`: serve the gateway with uvicorn on its port (default 8000)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
