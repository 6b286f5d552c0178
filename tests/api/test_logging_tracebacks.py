"""Logged exceptions are plain text tracebacks in every configuration (never rich, with locals).

structlog's default console renderer uses `rich` whenever it is importable; a rich traceback with
every frame's locals costs about a second or more per logged 500, so an app built without
`configure_logging` (tests, embedding) would crawl through error-heavy traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import structlog

from api.logging import configure_logging, ensure_logging


@pytest.fixture
def pristine_logging() -> Iterator[None]:
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    previous, handlers, level, disabled = (
        structlog.get_config(),
        list(root.handlers),
        root.level,
        access.disabled,
    )
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.configure(**previous)
        root.handlers, access.disabled = handlers, disabled
        root.setLevel(level)


def _console_renderers(processors: Iterable[Any]) -> list[structlog.dev.ConsoleRenderer]:
    return [p for p in processors if isinstance(p, structlog.dev.ConsoleRenderer)]


@pytest.mark.usefixtures("pristine_logging")
def test_unconfigured_logging_gets_plain_tracebacks() -> None:
    ensure_logging()
    renderers = _console_renderers(structlog.get_config()["processors"])
    assert len(renderers) == 1
    assert renderers[0]._exception_formatter is structlog.dev.plain_traceback


@pytest.mark.usefixtures("pristine_logging")
def test_console_format_gets_plain_tracebacks_and_ensure_keeps_it() -> None:
    configure_logging("info", "console")
    before = structlog.get_config()
    ensure_logging()
    assert structlog.get_config() == before
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_govtrack", False))
    formatter = handler.formatter
    assert isinstance(formatter, structlog.stdlib.ProcessorFormatter)
    renderers = _console_renderers(formatter.processors)
    assert len(renderers) == 1
    assert renderers[0]._exception_formatter is structlog.dev.plain_traceback
