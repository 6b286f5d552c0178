"""Kill -9 a spool writer at random moments: no partial entry, no lost acknowledged one, order kept.

Reopening after each kill must never show a partial entry, must keep every acknowledged one, and
must keep their order across restarts.

(kill -9 leaves the page cache alone, so this checks the temp-file/rename protocol and the
recovery scan, not the fsyncs; those are what makes the same hold across a power cut.)
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.spool import Spool
from tests.faults import event_ids

REPO = Path(__file__).resolve().parents[2]
ROWS = 400
CHILD = """
import sys
from pathlib import Path
from storage.spool import Spool
from tests.faults import make_batch

directory, first, rows = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
spool = Spool(directory, 1 << 40)
i = first
while True:
    entry = spool.write(make_batch(rows, start=i * rows))
    print("ACK", entry.seq, i, flush=True)  # the acknowledgement: printed only after write returned
    i += 1
"""


def run_and_kill(directory: Path, first: int, delay_s: float) -> list[tuple[int, int]]:
    """Start a writer, SIGKILL it after `delay_s`, return the (seq, batch index) it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(first), str(ROWS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        first_line = ""
        while not first_line.startswith("ACK "):  # wait until it has really written one entry
            first_line = child.stdout.readline()
            assert first_line, "the writer died on its own"
        time.sleep(delay_s)
    finally:
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
    lines = [first_line, *rest.splitlines()]
    acks = [line.split() for line in lines if line.startswith("ACK ")]  # logs go to stdout too
    return [(int(s), int(i)) for _, s, i in acks]


@pytest.mark.slow
def test_kill_9_never_leaves_a_partial_or_lost_entry(tmp_path: Path) -> None:
    rng = random.Random(20250310)
    directory = tmp_path / "spool"
    acked: list[tuple[int, int]] = []
    for run in range(6):
        acked += run_and_kill(directory, first=run * 10_000, delay_s=rng.uniform(0.0, 0.25))
        with Spool(directory, 1 << 40) as spool:
            entries = spool.entries()
            assert spool.snapshot().corrupt_files == 0
            leftovers = [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]
            assert leftovers == []
            seqs = [e.seq for e in entries]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == len(seqs)
            on_disk = {e.seq: e for e in entries}
            for seq, index in acked:  # every acknowledged entry is there, whole, with its rows
                table = spool.read(on_disk[seq])
                assert table.num_rows == ROWS
                assert table.column("event_id").to_pylist() == event_ids(index * ROWS, ROWS)
            for entry in entries:  # and nothing on disk is partial, acknowledged or not
                assert spool.read(entry).num_rows == ROWS
    assert len(acked) >= 6
    # Order across restarts: a later acknowledgement always has a higher sequence number.
    assert [s for s, _ in acked] == sorted(s for s, _ in acked)
