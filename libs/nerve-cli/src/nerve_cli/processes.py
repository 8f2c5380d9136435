"""Child processes in their own process groups (nothing is orphaned), and small helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

# Signals that end a supervisor: Ctrl-C, `timeout`/`kill`, a closed terminal.
TERMINATING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    pass_fds: tuple[int, ...] = field(default=())  # inherited descriptors (a held socket)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            # A terminating signal handled while Popen returns (a handler that raises) would lose
            # the new child: hold those signals until `self.process` records it.
            with signals_deferred():
                self.process = subprocess.Popen(
                    self.argv,
                    env=self.env,
                    cwd=self.cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    pass_fds=self.pass_fds,
                    start_new_session=True,  # own process group: killpg reaches its children
                    # A signal mask survives exec: without this the child would inherit the
                    # one above, deaf to SIGTERM and Ctrl-C, and every stop would wait out the
                    # grace period and end in SIGKILL.
                    preexec_fn=_unblock_terminating_signals,
                )
        finally:
            log.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL, no goodbye (crash tests)."""
        self.signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the group, SIGKILL whatever is left after `grace` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait(timeout=5)
        # Children that ignored SIGTERM while their parent exited.
        self.signal_group(signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _unblock_terminating_signals() -> None:
    """Run in the child between fork and exec (see ManagedProcess.start)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINATING_SIGNALS)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold the terminating signals (delivered when the block ends). Main thread only; elsewhere
    a no-op, since Python runs signal handlers on the main thread anyway."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def raise_keyboard_interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C (which works even when inherited ignored):
    KeyboardInterrupt, so `finally` blocks and test teardowns stop every child. Without it a
    `timeout` wrapper's SIGTERM ends the Python process on the spot and the children (in their
    own sessions) live on."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"terminated by {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    # A run started as a background job of a non-interactive shell inherits SIGINT ignored, and
    # Python then installs no Ctrl-C handler: a SIGINT would leave every child running.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class HeldSocket:
    """A listening TCP socket the supervisor owns and hands to each incarnation of a service
    (uvicorn `--fd`), like systemd socket activation or a load balancer: while the service
    restarts, connections wait in the backlog instead of being refused; a request the crash cut
    off still fails and is retried by the engine."""

    def __init__(self, host: str, port: int) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(256)
        self.socket.set_inheritable(True)

    @property
    def fd(self) -> int:
        return self.socket.fileno()

    def close(self) -> None:
        self.socket.close()


def dotenv_keys(path: Path) -> set[str]:
    """Variable names a `.env` file sets (KEY=VALUE lines)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return set()
    keys = set()
    for line in lines:
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip().upper())
    return keys


def dotenv_values(path: Path) -> dict[str, str]:
    """KEY=VALUE pairs of a `.env` file (comments, `export ` and surrounding quotes handled)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    values: dict[str, str] = {}
    for line in lines:
        line = line.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, raw = line.split("=", 1)
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
