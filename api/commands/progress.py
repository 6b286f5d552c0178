"""Progress of a long job: a tqdm bar on a terminal, plain lines at every tenth otherwise.

A bar in a log file or a CI transcript is a mess of carriage returns; a line per 10 % is what a
reader of such a log wants, and it is deterministic, so tests can read it.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """Counts `done` of `total` units; `update(n)` after each step, `close()` at the end."""

    def __init__(self, total: int, label: str, *, unit: str = "events", stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self._label = label
        self._unit = unit
        self._stream = stream or sys.stdout
        self._started = time.monotonic()
        self._next_tenth = 1
        size = shutil.get_terminal_size()
        self._bar = (
            tqdm(
                total=total,
                desc=label,
                unit=f" {unit}",
                unit_scale=True,
                file=self._stream,
                # shutil honours COLUMNS/LINES and says 80x24 where a terminal reports no size;
                # tqdm would take 0 rows as "no room" and draw nothing
                ncols=min(size.columns, 120),
                nrows=size.lines,
            )
            if self._stream.isatty()
            else None
        )

    def update(self, n: int) -> None:
        """`n` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        reached = min(10, self.done * 10 // self.total) if self.total else 10
        if reached >= self._next_tenth:
            self._line(reached * 10)
            self._next_tenth = reached + 1

    def _line(self, percent: int) -> None:
        print(
            f"{self._label}: {self.done:,}/{self.total:,} {self._unit} ({percent}%), {self.rate():,.0f} {self._unit}/s",
            file=self._stream,
            flush=True,
        )

    def rate(self) -> float:
        """Units per second so far."""
        return self.done / max(time.monotonic() - self._started, 1e-9)

    def elapsed_s(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self._started

    def close(self) -> None:
        """Finish the bar (nothing to do for plain lines)."""
        if self._bar is not None:
            self._bar.close()
