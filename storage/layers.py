"""The layers of a wrapped store, outermost first.

The app's wrappers (deferred opening, tracing, faults) each hold the store they wrap as `inner`,
and the archive tier holds its hot store as `hot`.

Code that needs one layer's capability (its internals, its transparency log, the tiered store)
walks them with `layers` instead of knowing how the app stacked them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

__all__ = ["layers"]

#: Wrappers nest a few levels; a cycle must not hang a caller (a scrape, /health).
MAX_DEPTH: Final = 16


def layers(store: object) -> Iterator[object]:
    """`store`, then what it wraps, outermost first (`inner`, else a tiered store's `hot`)."""
    current: object | None = store
    for _ in range(MAX_DEPTH):
        if current is None:
            return
        yield current
        inner = getattr(current, "inner", None)
        current = inner if inner is not None else getattr(current, "hot", None)
