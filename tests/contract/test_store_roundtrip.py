"""Contract: append/read round trip, identity and dedup (runs on every store)."""

from __future__ import annotations

import datetime as dt

from storage.base import EventFilter, EventStore, Page, SessionFilter
from storage.schema import EVENT_SCHEMA
from tests.contract.events import BASE, Row, eid, event, page_all, table
from tests.storage.log.storekit import independent_leaf


def _everything(store: EventStore) -> list[Row]:
    rows: list[Row] = store.query(EventFilter(), Page(limit=10_000, order="asc")).to_pylist()
    return rows


def test_every_column_round_trips(store: EventStore) -> None:
    rows = [
        event(
            1,
            timestamp=BASE + dt.timedelta(microseconds=123_457),
            machine_name=None,
            session_id="",
            workbook_name="C:\\Data\\Q3 budget.xlsx",
            sheet_name="Übersicht",
            cell_address="A1:A3,C1:C3",
            old_value="",
            new_value="-3.75",
            formula="=SUM(A1:A9)",
            correlation_id="corr-ä",
            attributes=[("AddinVersion", '"3.4.1.0"'), ("Tags", '["q3","draft"]'), ("IsReadOnly", "false")],
            received_at=BASE + dt.timedelta(seconds=5),
            batch_id="b-42",
        ),
        event(2, old_value=None, new_value=None, formula=None, sheet_name="", attributes=[]),
        event(3, old_value="x" * 32_767, new_value="false", attributes=[("Nested", '{"a":{"b":[1,null]}}')]),
    ]
    result = store.append(table(rows))
    assert (result.stored, result.duplicates) == (3, 0)
    got = store.query(EventFilter(), Page(limit=10, order="asc"))
    assert got.schema == EVENT_SCHEMA
    log = (
        "leaf_index",
        "leaf_hash",
    )  # the store's own: leaves in commit order (tests/contract/test_store_log.py)
    assert got.drop_columns(list(log)).to_pylist() == table(rows).drop_columns(list(log)).to_pylist()
    assert got.column("leaf_index").to_pylist() == [0, 1, 2]
    assert got.column("leaf_hash").to_pylist() == [independent_leaf(r) for r in got.to_pylist()]


def test_empty_store_reads_are_empty(store: EventStore) -> None:
    assert store.query(EventFilter(), Page()).schema == EVENT_SCHEMA
    assert store.query(EventFilter(), Page()).num_rows == 0
    assert store.get_event(eid(1)).num_rows == 0
    stats = store.stats(EventFilter(), 10)
    assert (stats.total_events, stats.unique_users, stats.unique_sessions) == (0, 0, 0)
    assert stats.first_event_at is None
    assert stats.last_event_at is None
    assert stats.top_users.num_rows == 0
    assert store.timeseries(EventFilter(), "hour", None).num_rows == 0
    assert store.sessions(SessionFilter(), 10, None).num_rows == 0
    assert store.session("s-1").num_rows == 0


def test_empty_batch_stores_nothing(store: EventStore) -> None:
    result = store.append(table([]))
    assert (result.stored, result.duplicates) == (0, 0)


def test_duplicates_inside_a_batch_keep_the_first(store: EventStore) -> None:
    rows = [event(1, new_value="first"), event(2), event(1, new_value="second"), event(2, new_value="z")]
    result = store.append(table(rows))
    assert (result.stored, result.duplicates) == (2, 2)
    assert store.get_event(eid(1)).column("new_value").to_pylist() == ["first"]
    assert store.get_event(eid(2)).column("new_value").to_pylist() == ["2"]


def test_resent_events_are_dropped_and_never_counted_twice(store: EventStore) -> None:
    first = [event(i, session_id=f"s-{i % 2}") for i in range(1, 11)]
    store.append(table(first))
    resent = [event(i, new_value="changed", session_id=f"s-{i % 2}") for i in range(5, 11)]
    result = store.append(table([*resent, event(11, session_id="s-1")]))
    assert (result.stored, result.duplicates) == (1, 6)

    rows = _everything(store)
    assert sorted(r["event_id"] for r in rows) == [eid(i) for i in range(1, 12)]
    assert all(r["new_value"] != "changed" for r in rows)
    assert len(page_all(store, EventFilter(), "asc", 3)) == 11
    stats = store.stats(EventFilter(), 10)
    assert stats.total_events == 11
    assert stats.by_event_type.column("count").to_pylist() == [11]
    assert sum(store.timeseries(EventFilter(), "day", None).column("count").to_pylist()) == 11
    sessions = store.sessions(SessionFilter(), 10, None)
    assert sum(sessions.column("event_count").to_pylist()) == 11
    assert store.session("s-1").column("event_count").to_pylist() == [6]
    assert store.get_event(eid(7)).num_rows == 1


def test_resent_id_with_another_timestamp_is_still_a_duplicate(store: EventStore) -> None:
    store.append(table([event(1)]))
    later = event(1, timestamp=BASE + dt.timedelta(days=65), new_value="moved")
    result = store.append(table([later]))
    assert (result.stored, result.duplicates) == (0, 1)
    assert [r["new_value"] for r in _everything(store)] == ["1"]


def test_many_batches_stay_exact(store: EventStore) -> None:
    for start in range(0, 200, 20):
        batch = [event(i) for i in range(start, start + 30)]  # overlaps the next batch by 10
        store.append(table(batch))
    assert store.stats(EventFilter(), 5).total_events == 210
    assert len({r["event_id"] for r in _everything(store)}) == 210


def test_get_event_returns_one_row_in_schema(store: EventStore) -> None:
    store.append(table([event(1), event(2)]))
    got = store.get_event(eid(2))
    assert got.schema == EVENT_SCHEMA
    assert got.column("event_id").to_pylist() == [eid(2)]
    assert store.get_event("not-a-stored-id").num_rows == 0
