"""Free local ports for an engine and the apps it calls (`nerve dev`, test harnesses, benches).

Every harness that starts an engine or an SDK app on this machine picks its ports here, so the
rule below (blocks stay out of the ephemeral range) is kept in one place.
"""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    """A port no one listens on now (the kernel's pick, in the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_block(count: int, *, low: int = 20_000, high: int = 32_000) -> int:
    """The first of `count` consecutive free ports (`nerve dev --base-port` takes a block).

    Drawn below Linux's ephemeral range (32768+): a block there can be taken between the check
    and the start by the outgoing connections other processes open."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        if all(port_is_free(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no block of {count} free ports between {low} and {high}")


def port_is_free(port: int) -> bool:
    """Nothing is bound to `port` on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
