"""An archive run in a child process, killed (SIGKILL, by itself) right after one of its steps.

`python -m tests.storage.archive.crash_child HOT_URL ARCHIVE_DIR load STEP`: open the tiered store,
append the test events (answered), then archive January and February and die the moment STEP
(files_written, read_back, reconciled, committed, dropped) completes for February, exactly as an
outside kill -9 at that instant would. Exit 3 means the step never came.

`python -m tests.storage.archive.crash_child HOT_URL ARCHIVE_DIR check STEP`: open again in a fresh
process (as after a restart: interrupted moves are finished at open), check every event is there
once and every figure equals the plain-Python oracle, run the archive again, check again, and
check that `verify` passes (no orphan file left, nothing doubled). Exit 0, or 1 with the reason.
"""

from __future__ import annotations

import os
import signal
import sys

from storage.archive.location import open_location
from storage.archive.mover import archive_months
from storage.archive.tiers import TieredStore
from storage.archive.verify import verify_archive
from storage.factory import create_store
from tests.contract.agreement import assert_store_agrees
from tests.contract.events import table
from tests.storage.archive.data import BEFORE, rows

STEPS = ("files_written", "read_back", "reconciled", "committed", "dropped")


def main(argv: list[str]) -> int:
    hot_url, archive_dir, phase, step = argv
    store = TieredStore(create_store(hot_url), open_location(archive_dir))
    store.open()
    data = rows(60)
    try:
        if phase == "load":

            def die_after(done: str, month: int) -> None:
                if done == step and month == 202402:
                    os.kill(os.getpid(), signal.SIGKILL)

            store.append(table(data))
            archive_months(store, BEFORE, on_step=die_after)
            return 3
        assert_store_agrees(store, data)
        archive_months(store, BEFORE)
        assert_store_agrees(store, data)
        assert set(store.hot.months()) == {202403}  # type: ignore[attr-defined]
        report = verify_archive(store.location)
        assert report.ok, report.problems
        assert report.rows == len([r for r in data if r["timestamp"].month < 3])
        print(f"after a kill at {step}: verified {report.files_checked} files", flush=True)
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
