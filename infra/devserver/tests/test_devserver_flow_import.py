"""Flow control is part of the engine: when it cannot load, the server does not start.

It used to be looked up with importlib and, on any error, replaced by "no flow control" after one
log line: the engine then ran with concurrency limits, throttles and debounce silently off.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import devserver.engine
import pytest
from devserver.config import Settings


def test_an_import_error_in_flow_control_stops_the_server() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["devserver.flow.control"] = None  # the module cannot be imported
        from devserver.config import Settings
        from devserver.server import create_app
        create_app(Settings(in_memory=True, ui=False))
        print("the server started without flow control")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stdout
    assert "without flow control" not in done.stdout
    assert "ModuleNotFoundError" in done.stderr and "devserver.flow.control" in done.stderr


def test_a_flow_control_that_fails_to_build_fails_the_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("flow control is broken")

    monkeypatch.setattr(devserver.engine, "FlowController", Broken)
    settings = Settings(database_url=f"sqlite:///{tmp_path}/engine.db", ui=False)
    with pytest.raises(RuntimeError, match="flow control is broken"):
        devserver.engine.Engine(settings)
