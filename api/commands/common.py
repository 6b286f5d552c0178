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
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from api.logging import configure_logging
from api.settings import Settings

if TYPE_CHECKING:
    from storage.archive.tiers import TieredStore
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
    "open_tiered",
    "paragraph",
    "quiet_logging",
    "timestamp",
]

StoreT = TypeVar("StoreT", bound="EventStore")

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


def open_store(settings: Settings, url: str | None = None) -> EventStore:
    """The store a job works on, opened as the server opens it; a failure is a JobError naming why.

    GOVTRACK_STORE_URL (`url` None or equal to it): `open_tiered`. Another URL (`demo --store`):
    that store alone, with the engine memory setting; the settings' log and archive belong to
    GOVTRACK_STORE_URL, so it keeps its own log beside its data.
    """
    from storage.factory import create_store  # imported here so that --help stays fast

    if url is None or url == settings.store_url:
        return open_tiered(settings)
    return _opened(url, lambda: create_store(url, memory_mb=settings.engine_memory_mb))


def open_tiered(settings: Settings) -> TieredStore:
    """The store of GOVTRACK_STORE_URL built as the server builds it (api.tiers.configured_store), opened.

    Engine memory, the one log of GOVTRACK_LOG_* (never a second key beside the data) and the
    archive tier: figures span archived months and appends are deduplicated against them.
    """
    from api.tiers import configured_store

    return _opened(settings.store_url, lambda: configured_store(settings))


def _opened(url: str, build: Callable[[], StoreT]) -> StoreT:
    from storage.errors import StoreError, StoreHeldError

    try:
        store = build()
    except (ValueError, StoreError) as exc:
        raise JobError(f"cannot use the store {url}: {exc}") from exc
    try:
        store.open()
    except StoreError as exc:
        store.close()
        # only a held store has anything to do with a server: another hint would mislead
        hint = "; if a server runs on this store, it holds it: use --url, or stop the server"
        held = isinstance(exc, StoreHeldError)
        raise JobError(f"cannot open the store {url}: {exc}{hint if held else ''}") from exc
    return store


def fail(message: str) -> int:
    """Print `govtrack: <message>` on stderr; returns exit code 1."""
    print(f"govtrack: {message}", file=sys.stderr)
    return EXIT_FAILURE
