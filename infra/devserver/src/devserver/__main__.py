"""`python -m devserver`: the same CLI as the `devserver` command."""

from devserver.cli import run

run()
