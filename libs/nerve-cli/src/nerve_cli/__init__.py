"""The `nerve` command-line interface."""
