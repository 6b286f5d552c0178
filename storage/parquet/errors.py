"""The one place where DuckDB, Arrow and OS errors of the Parquet store become storage errors.

Transient: the disk or memory may recover (I/O, full disk, out of memory, interrupted).
Terminal: retrying the same call cannot help (bad data, permission, internal/binder errors).
Invalid query: a caller's value DuckDB cannot use (conversion, out of range) - maps to HTTP 400.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from storage.errors import InvalidQueryError, StoreError, TerminalStoreError, TransientStoreError

__all__ = ["translate_errors"]

_TERMINAL_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR})


def _translate(exc: BaseException, action: str) -> StoreError:
    message = f"parquet store: {action} failed: {exc}"
    name = type(exc).__name__
    if isinstance(exc, OSError):
        cls: type[StoreError] = TerminalStoreError if exc.errno in _TERMINAL_ERRNOS else TransientStoreError
        return cls(message, code=exc.errno, name=name)
    if isinstance(exc, duckdb.IOException | duckdb.OutOfMemoryException | duckdb.InterruptException):
        return TransientStoreError(message, name=name)
    if isinstance(exc, duckdb.ConversionException | duckdb.OutOfRangeException):
        return InvalidQueryError(message, name=name)
    return TerminalStoreError(message, name=name)


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise any engine/OS/Arrow error inside the block as a `StoreError` naming `action`."""
    try:
        yield
    except StoreError:
        raise
    except (duckdb.Error, OSError, pa.ArrowException, ValueError, KeyError) as exc:
        raise _translate(exc, action) from exc
