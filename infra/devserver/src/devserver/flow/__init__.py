"""Flow control for the devserver: Inngest's concurrency, throttle, rate limit, debounce,
priority, batching, idempotency, singleton semantics (infra/devserver/docs/flow-control.md),
plus the expression runtime used by `devserver.expressions`.

Imports stay lazy here: `devserver.expressions` imports `devserver.flow.cel_*`, and the
controller imports `devserver.expressions`.
"""
