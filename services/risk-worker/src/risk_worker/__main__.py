"""`python -m risk_worker`: run the risk worker on its port (8002 by default)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import RiskSettings


def main() -> None:
    settings = RiskSettings()
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.port)


if __name__ == "__main__":
    main()
