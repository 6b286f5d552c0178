"""What every job shares: exit codes, the help epilog that states them, times, opening a store.

Exit codes, the same for every command: 0 done, 1 the job failed (store unreachable or locked,
server refused, an event rejected), 2 usage error (argparse, or a setting that cannot be used).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Final

from api.logging import configure_logging
from api.settings import Settings

if TYPE_CHECKING:
    from storage.base import EventStore

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "JobError",
    "api_key_from_env",
    "exit_codes",
    "fail",
    "open_store",
    "paragraph",
    "quiet_logging",
    "timestamp",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

#: The client-side key variable the notebooks use too (the server reads GOVTRACK_API_KEYS).
API_KEY_ENV: Final = "GOVTRACK_API_KEY"


class JobError(Exception):
    """A job failed for a reason the user can act on; printed as one line, exit 1."""


def paragraph(text: str) -> str:
    """A --help description filled to the terminal's usual width (the epilogs stay as written)."""
    return textwrap.fill(" ".join(text.split()), width=88)


def exit_codes(failure: str) -> str:
    """The epilog every job's --help ends with."""
    return f"exit codes:\n  0  done\n  1  {failure}\n  2  usage error (bad option or value)"


def timestamp(text: str) -> dt.datetime:
    """`--from`/`--to`: an ISO-8601 date or date-time; no offset means UTC (argparse: exit 2)."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 date or time: {text!r} (e.g. 2025-06-01 or 2025-06-01T09:30:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def api_key_from_env() -> str | None:
    """The key a client job sends, from GOVTRACK_API_KEY (None when unset or empty)."""
    return os.environ.get(API_KEY_ENV) or None


def quiet_logging(settings: Settings) -> None:
    """Logs to stderr at warning level (debug when asked), so a job's own output stays readable."""
    configure_logging("debug" if settings.log_level == "debug" else "warning", settings.log_format)


def open_store(url: str, settings: Settings | None = None) -> EventStore:
    """The store at `url`, opened; a store that cannot be opened is a JobError naming the cause.

    With `settings` (and `url` their store), the store's transparency log is the one configured
    there (GOVTRACK_LOG_DIR, _LOG_KEY_FILE, _LOG_ORIGIN); otherwise the default, beside the data.
    """
    from api.transparency import log_options
    from storage.errors import StoreError  # imported here so that --help stays fast
    from storage.factory import create_store

    log = log_options(settings) if settings is not None and settings.store_url == url else None
    try:
        store = create_store(url, log=log)
    except (ValueError, StoreError) as exc:
        raise JobError(f"cannot use the store {url}: {exc}") from exc
    try:
        store.open()
    except StoreError as exc:
        hint = "; if a server runs on this store, it holds it: use --url, or stop the server"
        raise JobError(f"cannot open the store {url}: {exc}{hint}") from exc
    return store


def fail(message: str) -> int:
    """Print `govtrack: <message>` on stderr; returns exit code 1."""
    print(f"govtrack: {message}", file=sys.stderr)
    return EXIT_FAILURE
