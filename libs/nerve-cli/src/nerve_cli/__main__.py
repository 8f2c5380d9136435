"""`python -m nerve_cli` = the `nerve` command."""

from .main import app

app(prog_name="nerve")
