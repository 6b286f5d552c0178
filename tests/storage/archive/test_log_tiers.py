"""Verifiable history across the tiers, on both hot stores: leaves survive the move.

Every answer (a cell as of a time, a workbook's cells, a session's completeness, proofs,
verification of the archive and of a whole export) is the same after archiving as before, and
equal to a plain-Python oracle over the events.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from storage.archive.location import open_location
from storage.archive.mover import archive_months
from storage.archive.tiers import TieredStore
from storage.base import CELL_SETTING_TYPES, EventFilter, EventStore
from storage.factory import create_store
from storage.log.completeness import Completeness, session_numbers_completeness
from storage.log.proofs import verify_tlog_proof
from storage.log.store_log import LogOptions
from storage.log.verify import verify_export
from tests.contract.events import Row, event, table
from tests.storage.archive.conftest import TiersOf
from tests.storage.archive.data import BEFORE, FEB, MAR, rows, tiered
from tests.storage.log.storekit import assert_log_agrees, independent_leaf, log_of

UTC = dt.UTC
TIMES = (
    FEB - dt.timedelta(microseconds=1),
    FEB,
    dt.datetime(2024, 2, 17, 5, tzinfo=UTC),
    MAR - dt.timedelta(microseconds=1),
    MAR,
    dt.datetime(2024, 3, 31, tzinfo=UTC),
)


def _numbered(data: list[Row]) -> list[Row]:
    """session_seq per session in time order, with gaps (every 5th number skipped) and one session_end."""
    seen: dict[str, int] = {}
    out = []
    for row in sorted(data, key=lambda r: (r["timestamp"], r["event_id"])):
        sid = row["session_id"]
        if sid is None:
            out.append(row)
            continue
        n = seen.get(sid, 0)
        seen[sid] = n + (2 if n % 5 == 4 else 1)
        out.append(row | {"session_seq": n})
    return out


def _cell_oracle(data: list[Row], workbook: str, at: dt.datetime) -> dict[tuple[str, str], str]:
    """(sheet, cell) -> event_id of the last setting event at or before `at`, in plain Python."""
    last: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
    for r in data:
        if r["workbook_name"] != workbook or r["event_type"] not in CELL_SETTING_TYPES or r["timestamp"] > at:
            continue
        key = (r["sheet_name"], r["cell_address"])
        last[key] = max(last.get(key, (r["timestamp"], r["event_id"])), (r["timestamp"], r["event_id"]))
    return {k: v[1] for k, v in sorted(last.items())}


def _workbook_pages(
    store: EventStore, workbook: str, at: dt.datetime, limit: int
) -> dict[tuple[str, str], str]:
    got: dict[tuple[str, str], str] = {}
    after: tuple[str, str] | None = None
    while True:
        page = store.workbook_state(workbook, at, limit, after).to_pylist()
        for r in page:
            key = (r["sheet_name"], r["cell_address"])
            assert key not in got, f"{key} twice"
            got[key] = r["event_id"]
        if len(page) < limit:
            return got
        after = (page[-1]["sheet_name"], page[-1]["cell_address"])


def _completeness(store: TieredStore, session_id: str) -> Completeness:
    def events_of(seqs: list[int]) -> pa.Table:
        return store.session_seq_events(session_id, seqs)

    return session_numbers_completeness([store.session_numbers(session_id)], events_of)


def _answers(store: TieredStore, data: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for at in TIMES:
        for workbook in ("book0.xlsx", "book1.xlsx", "book.xlsx"):
            for limit in (1, 3, 100):
                out[f"{workbook}/{at}/{limit}"] = _workbook_pages(store, workbook, at, limit)
            for cell in ("B0", "B1", "B2", "B3", "Z9"):
                found = store.cell_state(workbook, "Sheet1", cell, at).column("event_id").to_pylist()
                out[f"{workbook}/{cell}/{at}"] = found
    for sid in ("s-1", "s-3", "edge-a", "edge-b", "nope"):
        out[f"session/{sid}"] = _completeness(store, sid)
    return out


def test_history_reads_verify_and_proofs_span_the_tiers(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = _numbered(rows())
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data[:60]))
    tiers.append(table(data[60:]))
    before = _answers(tiers, data)
    for at in TIMES:  # the oracle, before and after
        for workbook in ("book0.xlsx", "book1.xlsx", "book.xlsx"):
            assert before[f"{workbook}/{at}/3"] == _cell_oracle(data, workbook, at)
    archive_months(tiers, BEFORE)
    assert sorted(tiers.reader.months()) == [202401, 202402]
    after = _answers(tiers, data)
    changed = sorted(k for k in before if before[k] != after[k])
    assert not changed, f"{changed[:3]}: {before[changed[0]]} -> {after[changed[0]]}"
    assert_log_agrees(tiers, len(data))  # both tiers' events are leaves 0..n-1, the tree holds them all
    log = log_of(tiers)
    assert log is not None
    verifier = log.log.checkpoints.signer.verifier

    # an archived event's proof, from the log's tree files
    archived = min((r for r in data if r["timestamp"] < MAR), key=lambda r: r["event_id"])
    stored = tiers.get_event(archived["event_id"]).to_pylist()[0]
    proof = log.log.inclusion(stored["leaf_index"])
    assert verify_tlog_proof(proof, independent_leaf(stored), verifier)[0] == stored["leaf_index"]

    # the archive verifies on its own, as a partial export: every archived event against the tree
    archive = tmp_path / "archive"
    note = (archive / "log" / "checkpoint").read_text()
    report = verify_export(archive, note, verifier, partial=True)
    held = len([r for r in data if r["timestamp"] < MAR])
    assert report.ok, [f.line() for f in report.findings]
    assert (report.checked, report.absent) == (held, len(data) - held)

    # an export of the whole store (both tiers) verifies as a whole
    result = tiers.export(EventFilter(), str(tmp_path / "export"))
    assert result.manifest["log"] == {"checkpoint": "log/checkpoint", "size": len(data)}
    export = tmp_path / "export"
    whole = verify_export(export, (export / "log" / "checkpoint").read_text(), verifier)
    assert whole.ok, [f.line() for f in whole.findings]
    assert whole.checked == len(data)
    exported = pa.concat_tables([pq.read_table(p) for p in sorted(export.rglob("*.parquet"))])
    assert sorted(exported.column("leaf_index").to_pylist()) == list(range(len(data)))


def _reopened(store: EventStore, tmp_path: Path, chdb_path: Path, log_dir: Path) -> EventStore:
    """A second store over the same data as `store` (closed), keeping its log in `log_dir`."""
    options = LogOptions(directory=log_dir)
    if store.name == "parquet":
        return create_store(f"parquet://{tmp_path / 'parquet'}", log=options)
    database: str = store.database  # type: ignore[attr-defined]
    return create_store(f"chdb://{chdb_path}", database=database, log=options)


def test_a_store_reopened_over_its_archive_counts_the_archived_leaves(
    store: EventStore, tmp_path: Path, chdb_path: Path
) -> None:
    """Tree files rebuilt at open (lost, or a fresh log directory) take archived leaves from the archive.

    Leaves of both tiers interleave (commit order is not time order), so the hot store alone
    holds neither a prefix nor all of them; with every month archived it holds none at all.
    """
    data = rows()
    url = str(tmp_path / "archive")
    first = tiered(store, url)
    first.append(table(data))
    log = log_of(first)
    assert log is not None
    root = log.log.tree.root(len(data))
    archive_months(first, BEFORE)
    first.close()
    for k, before in enumerate((BEFORE, 202404)):
        again = TieredStore(_reopened(store, tmp_path, chdb_path, tmp_path / f"log-{k}"), open_location(url))
        try:
            again.open()
            reopened = log_of(again)
            assert reopened is not None
            assert (reopened.next_index, reopened.log.size) == (len(data), len(data))
            assert reopened.log.tree.root(len(data)) == root
            if before != BEFORE:
                late = event(99_999, timestamp=dt.datetime(2024, 5, 2, tzinfo=UTC))
                assert again.append(table([late])).stored == 1
                assert again.get_event(late["event_id"]).column("leaf_index").to_pylist() == [len(data)]
            else:
                archive_months(again, 202404)
        finally:
            again.close()
