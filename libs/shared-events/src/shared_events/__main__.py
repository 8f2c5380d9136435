"""`python -m shared_events schemas [--check] [--dir DIR]` and `python -m shared_events catalog`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .catalog import CATALOG
from .refs import FUNCTION_REFS
from .schemas import DEFAULT_SCHEMA_DIR, BreakingSchemaChange, check_schemas, write_schemas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared_events")
    commands = parser.add_subparsers(dest="command", required=True)
    schemas = commands.add_parser("schemas", help="write (or --check) the committed JSON Schemas")
    schemas.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    schemas.add_argument("--dir", type=Path, default=DEFAULT_SCHEMA_DIR, help="schema directory")
    commands.add_parser("catalog", help="list every event and invokable function")
    args = parser.parse_args(argv)

    if args.command == "catalog":
        for name, model in sorted(CATALOG.items()):
            print(f"{name}  v{model.version}  {model.__name__}")
        for composite in sorted(FUNCTION_REFS):
            print(f"{composite}  (invoke)")
        return 0

    if args.check:
        report = check_schemas(args.dir)
        for line in report.lines():
            print(line, file=sys.stderr)
        if report.ok:
            print(f"schemas up to date ({args.dir})")
            return 0
        if not report.breaking:
            print(
                "run `uv run python -m shared_events schemas` and commit the result",
                file=sys.stderr,
            )
        return 1

    try:
        written = write_schemas(args.dir)
    except BreakingSchemaChange as error:
        print(f"refusing to write: BREAKING: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    report = check_schemas(args.dir)
    for line in report.lines():
        print(line, file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
