"""Flow control for the devserver: Inngest's concurrency, throttle, rate limit, debounce,
priority, batching, idempotency, singleton semantics (protocol doc §7), plus the expression
runtime used by `devserver.expressions`."""
