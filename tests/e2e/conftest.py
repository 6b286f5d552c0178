"""Keep unhandled-error logging cheap while the hostile tests run.

In-process tests log through structlog's default configuration, whose ConsoleRenderer formats
exceptions with `rich` (tracebacks with every frame's locals) whenever rich is importable, and
schemathesis installs rich. That costs about 7 s per 500 (measured: 6.8-8.0 s with rich, 0.02-0.07 s
without), so a regression that turns hostile input into 500s would take minutes to report. This
fixture swaps in the plain traceback formatter for the duration of each test and restores the
previous configuration afterwards; what is logged is unchanged, only how it is laid out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def plain_tracebacks() -> Iterator[None]:
    previous = structlog.get_config()
    processors = list(previous["processors"])
    if processors and isinstance(processors[-1], structlog.dev.ConsoleRenderer):
        processors[-1] = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        structlog.configure(processors=processors)
    try:
        yield
    finally:
        structlog.configure(**previous)
