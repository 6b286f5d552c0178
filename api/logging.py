"""structlog configuration and the request id that every log line and error body carries.

The request id lives in the ASGI scope's `state` (so error handlers outside the request's task can
still find it) and in structlog's contextvars (so every log line of the request is bound to it).
The stdlib root logger is routed through the same renderer, so uvicorn's own lines match ours.

Exceptions are always rendered as plain text tracebacks (JSON: the formatted traceback string;
console: `structlog.dev.plain_traceback`). structlog's own default console renderer switches to
`rich` tracebacks with every frame's locals as soon as `rich` is importable, which costs seconds
per logged 500; `ensure_logging` installs the default configuration with the plain formatter for
apps built without `configure_logging` (tests, benchmarks, embedding).
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import MutableMapping
from typing import Any, Final, Literal

import structlog
from starlette.types import Scope

__all__ = [
    "REQUEST_ID_HEADER",
    "configure_logging",
    "ensure_logging",
    "get_logger",
    "new_request_id",
    "request_id_of",
    "sanitize_request_id",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
_STATE_KEY: Final = "request_id"
_MAX_CLIENT_ID_LEN: Final = 128


def new_request_id() -> str:
    """A fresh id for a request that came without one."""
    return uuid.uuid4().hex


def sanitize_request_id(value: str | None) -> str | None:
    """The client's id if it is short printable ASCII (it is echoed into headers and logs), else None."""
    if not value or len(value) > _MAX_CLIENT_ID_LEN:
        return None
    if not all(33 <= ord(c) < 127 for c in value):
        return None
    return value


def set_request_id(scope: Scope, request_id: str) -> None:
    """Remember the id in the scope's state, which Starlette exposes as `request.state`."""
    state: MutableMapping[str, Any] = scope.setdefault("state", {})
    state[_STATE_KEY] = request_id


def request_id_of(scope: Scope) -> str:
    """The id the middleware assigned to this request ("" outside of the middleware)."""
    state = scope.get("state") or {}
    value = state.get(_STATE_KEY, "")
    return str(value)


def get_logger(name: str) -> Any:
    """A structlog logger; lines carry whatever is bound in the contextvars (request_id, batch_id)."""
    return structlog.get_logger(name)


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "info", fmt: Literal["json", "console"] = "json") -> None:
    """Route structlog and stdlib logging through one renderer on stderr; safe to call again."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    exc_processors = [structlog.processors.format_exc_info] if fmt == "json" else []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exc_processors, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_govtrack", False)]
    handler._govtrack = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def ensure_logging() -> None:
    """When nobody configured structlog: its defaults, but with plain (not rich) tracebacks.

    A configuration made by `configure_logging` (or by the embedding program) is left alone.
    """
    if structlog.is_configured():
        return
    processors = [
        structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        if isinstance(p, structlog.dev.ConsoleRenderer)
        else p
        for p in structlog.get_config()["processors"]
    ]
    structlog.configure(processors=processors)
