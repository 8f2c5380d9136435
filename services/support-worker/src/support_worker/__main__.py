"""`python -m support_worker`: run the support worker on its port (8001 by default)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import SupportSettings


def main() -> None:
    settings = SupportSettings()
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.port)


if __name__ == "__main__":
    main()
