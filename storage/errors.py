"""The store's error family: transient (worth retrying or spooling) versus terminal (not).

Driver errors are translated into these in exactly one place per engine, so the writer, the retry
policy and the HTTP layer never see a driver exception.
"""

from __future__ import annotations

__all__ = ["InvalidQueryError", "StoreError", "StoreHeldError", "TerminalStoreError", "TransientStoreError"]


class StoreError(Exception):
    """Base of every error a store raises; `code`/`name` carry the engine's own, when it has one."""

    def __init__(self, message: str, *, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class TransientStoreError(StoreError):
    """The store may succeed if asked again later (unreachable, timeout, too many parts)."""


class TerminalStoreError(StoreError):
    """Asking again will not help (bad data, schema mismatch, permission)."""


class InvalidQueryError(TerminalStoreError):
    """A read was asked for something impossible (bad cursor, unknown bucket); maps to 400."""


class StoreHeldError(TerminalStoreError):
    """Another process holds an embedded store's files (a server running on it, most likely).

    Its own type so that a command can suggest asking that server instead: any other failure to
    open a store has nothing to do with a server, and saying so would send the reader astray.
    """
