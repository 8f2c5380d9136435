"""structlog configuration: JSON lines (or console) for our logs *and* the stdlib loggers
(uvicorn, the Inngest SDK), with run id / event id / function id bound while a function runs."""

from __future__ import annotations

import logging
import sys
from typing import Any

import inngest
import structlog

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]

RUN_CONTEXT_KEYS = ("run_id", "event_id", "event_name", "function_id", "attempt")


def configure_logging(
    level: str = "INFO", *, json: bool = True, service_name: str | None = None
) -> None:
    """Route structlog and stdlib logging through one renderer on stdout. Idempotent."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[
            # First: a line below the level is dropped before the timestamp and context work.
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.format_exc_info if json else _identity,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # A stdlib record's exc_info (uvicorn's "Exception in ASGI application", the SDK's
            # errors) becomes its traceback text, not the repr of a tuple.
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(_CurrentStdout())
    handler.setFormatter(formatter)
    handler.set_name("service_kit")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "service_kit"]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for uvicorn_logger in ("uvicorn", "uvicorn.error"):
        logging.getLogger(uvicorn_logger).handlers = []
        logging.getLogger(uvicorn_logger).propagate = True
    if service_name:
        structlog.contextvars.bind_contextvars(service=service_name)


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is now (test capture swaps it after configuration)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _identity(_logger: Any, _name: str, event_dict: Any) -> Any:
    return event_dict


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger (bound with `initial` values)."""
    return structlog.stdlib.get_logger(name).bind(**initial)


def bind_run_context(**values: Any) -> None:
    """Bind values (e.g. run_id, event_id) to every log line of the current task."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear_run_context() -> None:
    structlog.contextvars.unbind_contextvars(*RUN_CONTEXT_KEYS)


class LogContextMiddleware(inngest.Middleware):
    """Binds run id, event id/name, function id and attempt while a function executes, so every
    log line written inside a function (or a step) carries them."""

    async def transform_input(
        self,
        ctx: inngest.Context | inngest.ContextSync,
        function: inngest.Function[Any],
        steps: Any,
    ) -> None:
        event = ctx.event
        bind_run_context(
            run_id=ctx.run_id,
            event_id=event.id or None,
            event_name=event.name,
            function_id=function.id,
            attempt=ctx.attempt,
        )

    async def before_response(self) -> None:
        clear_run_context()
