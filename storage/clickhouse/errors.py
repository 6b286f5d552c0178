"""The one place where clickhouse-connect errors become storage.errors types, plus the retry policy.

Transient means "the same call may succeed later": the server is unreachable, a timeout, too many
parts (inserts are faster than merges), Keeper or replica trouble, memory pressure. Everything else
(syntax, unknown column, bad data, permissions) is terminal and never retried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from clickhouse_connect.driver import exceptions as ch
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from storage.errors import StoreError, TerminalStoreError, TransientStoreError

__all__ = ["TRANSIENT_CODES", "retrying", "translate", "translated"]

P = ParamSpec("P")
R = TypeVar("R")

#: ClickHouse error codes worth retrying (src/Common/ErrorCodes.cpp).
TRANSIENT_CODES: Final[frozenset[int]] = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (replica temporarily read-only)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)

#: Bounded retry: at most 4 attempts, exponential backoff with full jitter, capped at 2 s a wait.
MAX_ATTEMPTS: Final = 4


def translate(exc: BaseException) -> StoreError:
    """The storage error for a driver (or OS) error; already-translated errors pass through."""
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "code", None)
    name = getattr(exc, "name", None)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ch.OperationalError | ConnectionError | TimeoutError) or code in TRANSIENT_CODES:
        return TransientStoreError(message, code=code, name=name)
    return TerminalStoreError(message, code=code, name=name)


def translated(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func`, raising only storage.errors types (no retry)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # every driver error crosses here exactly once
            raise translate(exc) from exc

    return wrapper


def retrying(func: Callable[P, R]) -> Callable[P, R]:
    """Translate errors and retry the transient ones with bounded, jittered exponential backoff."""
    policy = retry(
        retry=retry_if_exception_type(TransientStoreError),
        stop=stop_after_attempt(MAX_ATTEMPTS),
        wait=wait_random_exponential(multiplier=0.05, max=2.0),
        reraise=True,
    )
    return policy(translated(func))
