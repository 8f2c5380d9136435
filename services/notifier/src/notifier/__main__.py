"""`python -m notifier`: run the notifier on its port (8003 by default)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import NotifierSettings


def main() -> None:
    settings = NotifierSettings()
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.port)


if __name__ == "__main__":
    main()
