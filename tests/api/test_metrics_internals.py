"""/metrics and /health show the store's inside (storage.internals) on the real app, on both stores.

Expectations are literal: the batches below put a known number of rows into known months, and the
engine's own background work (ClickHouse merges, Parquet compaction) is held still while the
figures are compared, then released and the figures compared again. The ClickHouse part count is
also taken independently, by the test's own query of system.parts on a second client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import clickhouse_connect
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import StoreInternalsProbe
from storage.base import EventStore
from storage.clickhouse.store import ClickHouseStore
from storage.forwarding import ForwardingStore
from storage.parquet.store import ParquetStore
from tests.api.faultkit import faulty_client, metric, wait_until
from tests.faults import make_batch

APRIL = 2_700_000  # make_batch's row offset (seconds after 2025-03-10 09:00) landing on 2025-04-10


def internals(client: TestClient) -> dict[str, float]:
    """Every govtrack_parquet_* / govtrack_clickhouse_* sample of one scrape."""
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    return {
        sample.name.removeprefix("govtrack_"): float(sample.value)
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
        if sample.name.startswith(("govtrack_parquet_", "govtrack_clickhouse_"))
    }


def three_batches(store: EventStore) -> None:
    """30 events: two batches of 10 in March 2025, one of 10 in April 2025."""
    store.append(make_batch(10, start=0))
    store.append(make_batch(10, start=10))
    store.append(make_batch(10, start=APRIL))


@contextmanager
def chdb_client(store: EventStore, chdb_path: Path) -> Iterator[Any]:
    """A second client of the embedded engine, not the store's."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    try:
        yield client
    finally:
        client.close()


def active_parts(client: Any, database: str) -> int:
    rows = client.query(
        "SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'audit_events' AND active",
        parameters={"db": database},
    ).result_rows
    return int(rows[0][0])


def test_gauges_follow_the_appends(store: EventStore, tmp_path: Path, chdb_path: Path) -> None:
    with faulty_client(store, tmp_path) as (client, _):
        if isinstance(store, ParquetStore):
            check_parquet(client, store)
        else:
            check_clickhouse(client, cast(ClickHouseStore, store), chdb_path)


def check_parquet(client: TestClient, store: ParquetStore) -> None:
    assert internals(client)["parquet_files"] == 0
    with store._compactor.paused():  # no merge while the figures are compared
        three_batches(store)
        seen = internals(client)
        assert seen["parquet_files"] == 3
        assert seen["parquet_months"] == 2
        assert seen["parquet_max_files_per_month"] == 2
        assert seen["parquet_rows"] == 30
        assert seen["parquet_compaction_backlog_files"] == 0  # 2 small files < threshold 8
        assert seen["parquet_compactions"] == 0
        assert "parquet_last_compaction_seconds" not in seen
        months = store.root / "events" / "year=2025"
        assert len(list((months / "month=03").glob("*.parquet"))) == 2  # the disk agrees
        for i in range(6):  # March reaches 8 small files: a full tier, held back by the pause
            store.append(make_batch(5, start=100 + 5 * i))
        seen = internals(client)
        assert seen["parquet_max_files_per_month"] == 8
        assert seen["parquet_compaction_backlog_files"] == 8
        assert seen["parquet_compaction_running"] == 0
    store._compactor.poke()
    wait_until(lambda: internals(client)["parquet_compactions"] == 1)
    seen = internals(client)
    assert seen["parquet_files"] == 2  # March merged into one file, April untouched
    assert seen["parquet_max_files_per_month"] == 1
    assert seen["parquet_compaction_backlog_files"] == 0
    assert seen["parquet_rows"] == 60
    assert seen["parquet_last_compaction_rows"] == 50  # 10 + 10 + 6 * 5 March rows
    assert seen["parquet_last_compaction_seconds"] > 0
    assert seen["parquet_spill_bytes"] >= 0
    assert seen["parquet_duckdb_memory_bytes"] >= 0
    health = client.get("/health").json()["checks"]["store"]
    assert health["internals"]["parquet_files"] == 2


def check_clickhouse(client: TestClient, store: ClickHouseStore, chdb_path: Path) -> None:
    with chdb_client(store, chdb_path) as engine:
        engine.command(f"SYSTEM STOP MERGES {store.database}.audit_events")
        try:
            three_batches(store)
            seen = internals(client)
            assert active_parts(engine, store.database) == 3
            assert seen["clickhouse_active_parts"] == 3  # one part per month of each insert
            assert seen["clickhouse_max_parts_per_partition"] == 2
            assert seen["clickhouse_partitions"] == 2
            assert seen["clickhouse_rows"] == 30
            assert seen["clickhouse_merges_running"] == 0
            assert seen["clickhouse_parts_merging"] == 0
            assert seen["clickhouse_mutations_pending"] == 0
            assert seen["clickhouse_bytes_on_disk"] > 0
            assert seen["clickhouse_parts_to_throw_insert"] >= seen["clickhouse_parts_to_delay_insert"] > 0
            assert seen["clickhouse_memory_tracked_bytes"] > 0
        finally:
            engine.command(f"SYSTEM START MERGES {store.database}.audit_events")
        engine.command(f"OPTIMIZE TABLE {store.database}.audit_events FINAL")
        assert active_parts(engine, store.database) == 2
    seen = internals(client)
    assert seen["clickhouse_active_parts"] == 2  # one per month once merged
    assert seen["clickhouse_max_parts_per_partition"] == 1
    assert seen["clickhouse_rows"] == 30
    health = client.get("/health").json()["checks"]["store"]
    assert health["internals"]["clickhouse_active_parts"] == 2


def test_metrics_answer_while_the_store_is_down(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path) as (client, faulty):
        three_batches(store)
        assert internals(client)  # present while the store answers
        faulty.go_down()
        assert internals(client) == {}  # absent, not stale and not zero
        assert metric(client, "govtrack_spool_depth_files") == 0  # the rest of the scrape is there
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["checks"]["store"]["ok"] is False
        assert "internals" not in health.json()["checks"]["store"]
        faulty.come_up()
        rows = "parquet_rows" if store.name == "parquet" else "clickhouse_rows"
        assert internals(client)[rows] == 30


class _StuckInternals(ForwardingStore):
    """A real store whose first internals call blocks until released (an engine stuck on a lock)."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.release = threading.Event()
        self.first_done = threading.Event()
        self.calls = 0

    def internals(self) -> dict[str, float]:
        self.calls += 1
        self.release.wait()
        try:
            return super().internals()
        finally:
            self.first_done.set()


def test_a_stuck_store_bounds_the_scrape_and_is_not_asked_twice(store: EventStore) -> None:
    stuck = _StuckInternals(store)
    probe = StoreInternalsProbe(stuck, timeout_s=0.05)
    try:
        assert probe.read() is None  # gave up waiting
        assert probe.read() is None  # the first read is still running: no second one
        assert stuck.calls == 1
    finally:
        stuck.release.set()
    assert stuck.first_done.wait(30)
    probe.timeout_s = 30.0  # the engine answers again; wait as long as it takes on a busy machine
    answers: list[dict[str, float] | None] = []

    def answered() -> bool:  # the first read's thread may still be exiting: then no new read starts
        answers.append(probe.read())
        return answers[-1] is not None

    wait_until(answered)
    assert stuck.calls == 2
    found = answers[-1]
    assert found is not None
    assert ("parquet_files" if store.name == "parquet" else "clickhouse_active_parts") in found
