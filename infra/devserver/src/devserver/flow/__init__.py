"""Flow control for the devserver: Inngest's concurrency, throttle, rate limit, debounce,
priority, batching, idempotency, singleton semantics (infra/devserver/docs/flow-control.md),
plus the expression runtime used by `devserver.expressions`.

Imports stay lazy here: `devserver.expressions` imports `devserver.flow.cel_*`, and the
controller imports `devserver.expressions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devserver.flow.control import FlowController
    from devserver.hooks import FlowEngine


def create_flow_control(engine: FlowEngine) -> FlowController:
    """Factory the engine core looks up (devserver.hooks.load_flow_control)."""
    from devserver.flow.control import FlowController

    return FlowController(engine, store=getattr(engine, "database", None))
