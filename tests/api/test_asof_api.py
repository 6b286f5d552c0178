"""Any cell at any time over HTTP on every store: GET /api/cells/state and GET /api/workbooks/state.

The oracle is plain Python over the appended rows: for each (sheet, cell), the setting event
(cell_change, formula_change, range_change) with the greatest (timestamp, event_id) at or before T.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from storage.base import EventStore
from tests.api.readkit import assert_error
from tests.contract.events import BASE, Row, event, table

SETTING = ("cell_change", "formula_change", "range_change")


def _rows() -> list[Row]:
    """Edits of a few cells over two days, other event types on the same cells, a tie, two workbooks."""
    out: list[Row] = []
    kinds = ("cell_change", "formula_change", "workbook_save", "range_change", "sheet_add")
    for i in range(1, 61):
        out.append(
            event(
                i,
                timestamp=BASE + dt.timedelta(minutes=47 * (i // 2)),  # pairs share a timestamp
                event_type=kinds[i % 5],
                workbook_name="book.xlsx" if i % 7 else "other.xlsx",
                sheet_name=("Sheet1", "Sheet2", "P&L (EUR)")[i % 3],
                cell_address=("A1", "B2", "C3", "A10")[i % 4],
                new_value=f"v{i}",
                formula=f"=SUM(A{i})" if i % 5 == 1 else None,
            )
        )
    return out


def _oracle(rows: list[Row], workbook: str, at: dt.datetime) -> dict[tuple[str, str], Row]:
    best: dict[tuple[str, str], Row] = {}
    for r in rows:
        if r["workbook_name"] != workbook or r["event_type"] not in SETTING or r["timestamp"] > at:
            continue
        key = (r["sheet_name"], r["cell_address"])
        if key not in best or (r["timestamp"], r["event_id"]) > (
            best[key]["timestamp"],
            best[key]["event_id"],
        ):
            best[key] = r
    return dict(sorted(best.items()))


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TIMES = (
    BASE - dt.timedelta(seconds=1),
    BASE,
    BASE + dt.timedelta(hours=5, minutes=13),
    BASE + dt.timedelta(days=3),
)


def test_a_cell_as_of_a_time(client: TestClient, store: EventStore) -> None:
    rows = _rows()
    store.append(table(rows))
    for at in TIMES:
        want = _oracle(rows, "book.xlsx", at)
        for sheet in ("Sheet1", "Sheet2", "P&L (EUR)"):
            for cell in ("A1", "B2", "C3", "A10", "Q9"):
                params = {
                    "workbook_name": "book.xlsx",
                    "sheet_name": sheet,
                    "cell_address": cell,
                    "at": _iso(at),
                }
                r = client.get("/api/cells/state", params=params)
                assert r.status_code == 200, r.text
                body = r.json()
                expected = want.get((sheet, cell))
                assert (body["workbook_name"], body["sheet_name"], body["cell_address"]) == (
                    "book.xlsx",
                    sheet,
                    cell,
                )
                assert body["at"] == _iso(at)
                if expected is None:
                    assert (body["value"], body["formula"], body["event"]) == (None, None, None)
                    continue
                assert (body["value"], body["formula"]) == (expected["new_value"], expected["formula"])
                assert body["event"]["event_id"] == expected["event_id"]
                assert isinstance(body["event"]["leaf_index"], int)


def test_a_workbook_as_of_a_time_page_by_page(client: TestClient, store: EventStore) -> None:
    rows = _rows()
    store.append(table(rows))
    for at in TIMES:
        want = _oracle(rows, "book.xlsx", at)
        got: list[dict[str, Any]] = []
        cursor = None
        for _ in range(50):
            params = {"workbook_name": "book.xlsx", "at": _iso(at), "limit": 2} | (
                {"cursor": cursor} if cursor else {}
            )
            r = client.get("/api/workbooks/state", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert len(body["cells"]) <= 2
            got += body["cells"]
            cursor = body["next_cursor"]
            assert r.headers.get("x-next-cursor") == cursor
            if cursor is None:
                break
        assert [(c["sheet_name"], c["cell_address"]) for c in got] == list(want)
        assert [c["event_id"] for c in got] == [r["event_id"] for r in want.values()]
        assert [(c["value"], c["formula"]) for c in got] == [
            (r["new_value"], r["formula"]) for r in want.values()
        ]


def test_a_workbook_state_as_arrow_and_parquet(client: TestClient, store: EventStore) -> None:
    rows = _rows()
    store.append(table(rows))
    at = BASE + dt.timedelta(days=3)
    want = [r["event_id"] for r in _oracle(rows, "book.xlsx", at).values()]
    params = {"workbook_name": "book.xlsx", "at": _iso(at), "limit": 100}
    arrow = client.get(
        "/api/workbooks/state", params=params, headers={"Accept": "application/vnd.apache.arrow.stream"}
    )
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    cells = ipc.open_stream(arrow.content).read_all()
    assert cells.column_names[:4] == ["sheet_name", "cell_address", "value", "formula"]
    assert cells.column("event_id").to_pylist() == want
    parquet = client.get("/api/workbooks/state", params=params | {"format": "parquet"})
    assert pq.read_table(io.BytesIO(parquet.content)).column("event_id").to_pylist() == want


def test_state_requests_are_checked(client: TestClient, store: EventStore) -> None:
    store.append(table(_rows()))
    assert_error(client.get("/api/cells/state", params={"workbook_name": "book.xlsx"}), 400, "invalid_query")
    bad_at = {"workbook_name": "book.xlsx", "sheet_name": "Sheet1", "cell_address": "A1", "at": "yesterday"}
    assert_error(client.get("/api/cells/state", params=bad_at), 400, "invalid_query")
    assert_error(client.get("/api/workbooks/state"), 400, "invalid_query")
    assert_error(
        client.get("/api/workbooks/state", params={"workbook_name": "b", "limit": 0}), 400, "invalid_query"
    )
    first = client.get(
        "/api/workbooks/state", params={"workbook_name": "book.xlsx", "limit": 1, "at": _iso(TIMES[-1])}
    )
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    other = {"workbook_name": "other.xlsx", "limit": 1, "at": _iso(TIMES[-1]), "cursor": cursor}
    assert_error(client.get("/api/workbooks/state", params=other), 400, "invalid_cursor")
    forged = {"workbook_name": "book.xlsx", "at": _iso(TIMES[-1]), "cursor": cursor[:-3] + "AAA"}
    assert_error(client.get("/api/workbooks/state", params=forged), 400, "invalid_cursor")
