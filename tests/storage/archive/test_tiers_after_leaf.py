"""`after_leaf` across the tiers, on both hot stores: a resume point older than a move still works.

Archived months keep their leaves, so walking the log after any leaf gives the same events in the
same order before and after January and February move to the archive.
"""

from __future__ import annotations

from pathlib import Path

from storage.archive.mover import archive_months
from storage.base import EventFilter, EventStore
from tests.contract.events import table
from tests.contract.test_store_after_leaf import walk
from tests.storage.archive.conftest import TiersOf
from tests.storage.archive.data import BEFORE, FEB, MAR, rows

FILTERS = (
    EventFilter(),
    EventFilter(start=FEB, end=MAR),
    EventFilter(user_names=("CORP\\u1", "CORP\\edge0")),
    EventFilter(session_id="edge-b"),
)


def test_the_log_walks_the_same_after_archiving(store: EventStore, tiers_of: TiersOf, tmp_path: Path) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    for first in range(0, len(data), 30):  # every append touches all three months
        tiers.append(table(data[first::4][: 30 // 4 + 1]))
    tiers.append(table(data))  # the rest (the rows above are duplicates now)
    resume_points = (-1, 3, 40, len(data) - 2)
    before = {(i, p): walk(tiers, flt, p, 9) for i, flt in enumerate(FILTERS) for p in resume_points}
    assert [r["leaf_index"] for r in before[0, -1]] == list(range(len(data)))
    archive_months(tiers, BEFORE)
    assert sorted(tiers.reader.months()) == [202401, 202402]
    assert tiers.reader.leaf_end() == 1 + max(r["leaf_index"] for r in before[0, -1] if r["timestamp"] < MAR)
    after = {(i, p): walk(tiers, flt, p, 9) for i, flt in enumerate(FILTERS) for p in resume_points}
    assert after == before
    hot_only = walk(tiers.hot, EventFilter(), -1, 1000)
    assert 0 < len(hot_only) < len(data)  # the walk did read both tiers
