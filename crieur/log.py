"""structlog set-up shared by every service: JSON outside a terminal, readable in one."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "INFO", fmt: str = "auto", component: str = "") -> None:
    """fmt: `json`, `console`, or `auto` (console on a terminal, JSON otherwise).

    `component` (the service: notices, email...) is added to every line, so the lines of
    several services collected in one place can be told apart.
    """
    renderer: structlog.typing.Processor
    if fmt == "console" or (fmt == "auto" and sys.stderr.isatty()):
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if component:
        shared.append(_Component(component))
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(),
                    structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries (uvicorn, faststream, nats) log through stdlib logging: render their lines
    # the same way, so an operator's log collector sees one format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        # format_exc_info here too: uvicorn's "Exception in ASGI application" keeps its stack.
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request's full URL at INFO, query string (and any token in it) included.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


class _Component:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, _: object, __: str, event_dict: structlog.typing.EventDict
                 ) -> structlog.typing.EventDict:
        event_dict.setdefault("component", self.name)
        return event_dict
