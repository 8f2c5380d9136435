"""Print a Postgres URL for the test suites when one answers locally, else nothing.

`make test` uses this so CI (which has Postgres on 127.0.0.1:5432, trust auth, database
`test`) runs the database suites on Postgres too, while a laptop without Postgres runs SQLite.
"""

from __future__ import annotations

import socket
import sys

HOST, PORT = "127.0.0.1", 5432
URL = f"postgresql+asyncpg://postgres@{HOST}:{PORT}/test"


def main() -> int:
    try:
        with socket.create_connection((HOST, PORT), timeout=0.5):
            pass
    except OSError:
        return 0
    print(URL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
