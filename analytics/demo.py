"""Deterministic, realistic demo events in EVENT_SCHEMA, fast enough for 10M-event benchmarks.

Everything is drawn vectorised with numpy (present through chdb-core -> pandas) and assembled with
Arrow `take` over small vocabularies, so no Python runs per event. The same `(n, seed, start, …)`
always gives the same table, byte for byte.

Shape of the data: users (Zipf-like activity) work in sessions on one machine; a session opens one
workbook, edits cells and formulas on a few sheets (cells repeat, so cell histories are deep),
saves, and ends. Session starts cluster in office hours on weekdays.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from storage.schema import EVENT_SCHEMA, LOG_COLUMNS

__all__ = ["generate_events"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DEFAULT_START: Final = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
_US_PER_DAY: Final = 86_400_000_000

_FIRST: Final = (
    "alice", "bob", "chen.wei", "dana", "erik", "fatima", "gustav", "hana", "ivan", "julia",
    "kofi", "lena", "mateo", "nora", "omar", "priya", "quentin", "rosa", "sven", "tomás",
    "uma", "viktor", "wei.ling", "xavier", "yuki", "zoë.k",
)  # fmt: skip
_DOMAINS: Final = ("CORP", "CORP", "CORP", "EMEA", "APAC")
_FOLDERS: Final = (
    "\\\\fs01\\finance\\Budget 2025\\", "\\\\fs01\\finance\\Forecast\\", "C:\\Users\\Public\\Documents\\",
    "\\\\fs02\\risk\\Models\\", "https://corp.sharepoint.com/sites/ops/Shared Documents/",
)  # fmt: skip
_TOPICS: Final = (
    "Headcount", "Opex", "Capex", "Revenue bridge", "Cash flow", "FX rates", "Pricing model",
    "Sales pipeline", "Inventory", "Payroll", "Übersicht", "Risk register", "KPI pack", "Accruals",
)  # fmt: skip
_SUFFIXES: Final = (" v1.xlsx", " v2.xlsx", " (draft).xlsm", " FINAL.xlsx", " 2025.xlsb", ".xlsx")
_SHEETS: Final = ("Sheet1", "Summary", "Data", "P&L (EUR)", "Inputs", "Calc", "Übersicht", "Q3 'draft'")
_COLUMNS: Final = (*"ABCDEFGHIJKL", "AA", "AB")
_LABELS: Final = ("TBD", "n/a", "Approved", "Pending", "Q3", "Müller GmbH", "see note", "=")
_FORMULAS: Final = ("=SUM(", "=AVERAGE(", "=MAX(", "=IFERROR(XLOOKUP(A2,", "=ROUND(SUMPRODUCT(")
_VERSIONS: Final = ('"3.4.1.0"', '"3.4.0.2"', '"3.3.9.1"')
_BUILDS: Final = ('"16.0.18025.20104"', '"16.0.17928.20156"')

# Event types inside a session (after session_start / workbook_open, before save / session_end).
_BODY_TYPES: Final = (
    "cell_change", "formula_change", "range_change", "workbook_save", "sheet_add", "sheet_rename",
    "row_insert", "row_delete", "column_insert", "macro_run", "calculation", "error",
)  # fmt: skip
_BODY_WEIGHTS: Final = (0.62, 0.14, 0.05, 0.05, 0.015, 0.01, 0.03, 0.02, 0.01, 0.02, 0.02, 0.005)


_HEX_PAIRS: Final = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)


def _uuid_strings(rng: np.random.Generator, count: int) -> pa.Array:
    """`count` random version-4 UUIDs as canonical text, built as one buffer (no per-id Python)."""
    raw = np.frombuffer(rng.bytes(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = _HEX_PAIRS[raw].view(np.uint8)  # (count, 32) ASCII hex digits
    text = np.empty((count, 36), dtype=np.uint8)
    text[:, [8, 13, 18, 23]] = ord("-")
    for source, target in ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)):
        width = 12 if source == 20 else (8 if source == 0 else 4)
        text[:, target : target + width] = hexed[:, source : source + width]
    large = 36 * count >= 2**31
    offsets = np.arange(0, 36 * count + 1, 36, dtype=np.int64 if large else np.int32)
    kind = pa.large_string() if large else pa.string()
    array = pa.Array.from_buffers(kind, count, [None, pa.py_buffer(offsets), pa.py_buffer(text)])
    return array.cast(pa.string()) if large else array


def _take(
    vocabulary: tuple[str, ...] | list[str] | pa.Array,
    index: npt.NDArray[np.int64],
    present: npt.NDArray[np.bool_] | None = None,
) -> pa.Array:
    """Strings by index into a small vocabulary; rows where `present` is False become null."""
    values = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(vocabulary, type=pa.string())
    mask = None if present is None else ~present
    return pc.take(values, pa.array(index, mask=mask))


def _people(users: int) -> tuple[list[str], list[str]]:
    """User names (`DOMAIN` backslash first name [N]) and one machine name per user."""
    names = []
    for i in range(users):
        first = _FIRST[i % len(_FIRST)]
        suffix = "" if i < len(_FIRST) else f"{i // len(_FIRST) + 1}"
        names.append(f"{_DOMAINS[i % len(_DOMAINS)]}\\{first}{suffix}")
    machines = [f"{'LAPTOP' if i % 3 else 'WS'}-{(i * 7919) % 0xFFFFF:05X}" for i in range(users)]
    return names, machines


def _workbooks(count: int) -> list[str]:
    return [
        f"{_FOLDERS[i % len(_FOLDERS)]}{_TOPICS[i % len(_TOPICS)]}{_SUFFIXES[(i // 3) % len(_SUFFIXES)]}"
        if i < len(_TOPICS) * len(_SUFFIXES)
        else f"{_FOLDERS[i % len(_FOLDERS)]}{_TOPICS[i % len(_TOPICS)]} {i}.xlsx"
        for i in range(count)
    ]


def _zipf_choice(rng: np.random.Generator, count: int, size: int, skew: float = 1.1) -> npt.NDArray[np.int64]:
    weights = 1.0 / np.arange(1, count + 1) ** skew
    return rng.choice(count, size=size, p=weights / weights.sum()).astype(np.int64)


def _session_starts(
    rng: np.random.Generator, sessions: int, start_us: int, days: int
) -> npt.NDArray[np.int64]:
    """Session start times: weekdays mostly, office hours around 10:00 and 14:30 UTC."""
    day = rng.integers(0, days, size=sessions)
    weekday = (start_us // _US_PER_DAY + day + 3) % 7  # 1970-01-01 was a Thursday (3)
    move = (weekday >= 5) & (rng.random(sessions) < 0.85)
    day = np.where(move, np.maximum(day - (weekday - 4), 0), day)
    hour = np.where(
        rng.random(sessions) < 0.55, rng.normal(10.0, 1.2, sessions), rng.normal(14.5, 1.5, sessions)
    )
    seconds = (np.clip(hour, 6.0, 21.0) * 3600.0).astype(np.int64)
    return start_us + day * _US_PER_DAY + seconds * 1_000_000 + rng.integers(0, 1_000_000, size=sessions)


_TYPES: Final = ("session_start", "workbook_open", "session_end", *_BODY_TYPES)


def _event_types(
    rng: np.random.Generator, position: npt.NDArray[np.int64], size: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Index into `_TYPES` per event: start, open, body events, end."""
    weights = np.array(_BODY_WEIGHTS) / sum(_BODY_WEIGHTS)
    kind = rng.choice(len(_BODY_TYPES), size=len(position), p=weights) + 3
    kind[position == 1] = 1
    kind[(position == size - 1) & (size > 2)] = 2
    kind[position == 0] = 0
    return kind.astype(np.int64)


def generate_events(
    n: int,
    seed: int = 0,
    start: dt.datetime = _DEFAULT_START,
    *,
    days: int = 30,
    users: int = 40,
    workbooks: int = 120,
    events_per_session: int = 40,
    sort: bool = True,
) -> pa.Table:
    """`n` demo events in EVENT_SCHEMA, deterministic in all arguments.

    Args:
        n: number of events.
        seed: random seed; equal seeds give equal tables.
        start: aware datetime of the first possible session start (UTC).
        days: span of session start days.
        users: distinct users (activity is Zipf-distributed over them).
        workbooks: distinct workbook paths.
        events_per_session: mean events per session (geometric, at least 3).
        sort: order rows by timestamp, as an ingest log would be (else session by session).
    """
    if n <= 0:
        return EVENT_SCHEMA.empty_table()
    rng = np.random.default_rng(seed)
    session_of, position, size = _sessions(rng, n, events_per_session)
    sessions = int(session_of[-1]) + 1
    user = _zipf_choice(rng, users, sessions)[session_of]
    book = _zipf_choice(rng, workbooks, sessions, skew=0.9)[session_of]
    start_us = (start.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)
    gaps = (rng.exponential(18.0, size=n) * 1e6).astype(np.int64) + rng.integers(50_000, 400_000, size=n)
    gaps[position == 0] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[(np.arange(n) - position)]
    timestamp = _session_starts(rng, sessions, start_us, days)[session_of] + elapsed
    kind = _event_types(rng, position, size)
    order = pl.Series(timestamp).arg_sort().to_numpy() if sort else np.arange(n)
    per_event = {
        "session": session_of,
        "user": user,
        "book": book,
        "kind": kind,
        "ts": timestamp,
        "pos": position,
    }
    ev = {name: values[order] for name, values in per_event.items()}
    columns = _columns(rng, n, ev, sessions, _people(users), _workbooks(workbooks))
    ts_type = pa.timestamp("us", tz="UTC")
    columns["timestamp"] = pa.array(ev["ts"], type=ts_type)
    columns["received_at"] = pa.array(ev["ts"] + rng.integers(200_000, 5_000_000, size=n), type=ts_type)
    columns["session_seq"] = pa.array(ev["pos"], type=pa.int64())  # the add-in numbers each session's events
    for name in LOG_COLUMNS:  # assigned by the store that keeps the transparency log
        columns[name] = pa.nulls(n, EVENT_SCHEMA.field(name).type)
    return pa.table([columns[f.name] for f in EVENT_SCHEMA], schema=EVENT_SCHEMA)


def _sessions(
    rng: np.random.Generator, n: int, mean_size: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per event: its session number, its position in the session, and the session's size."""
    sizes = np.maximum(rng.geometric(1.0 / max(mean_size, 2), size=n // 3 + 2), 3)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    sizes[-1] -= int(sizes.sum()) - n
    session_of = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    first_row = np.cumsum(sizes) - sizes
    position = np.arange(n, dtype=np.int64) - first_row[session_of]
    return session_of, position, sizes[session_of].astype(np.int64)


def _columns(
    rng: np.random.Generator,
    n: int,
    ev: dict[str, npt.NDArray[np.int64]],
    sessions: int,
    people: tuple[list[str], list[str]],
    workbooks: list[str],
) -> dict[str, pa.Array]:
    """Every column but the timestamps, each one `take` from a small vocabulary."""
    kind = ev["kind"]
    is_edit = (kind >= 3) & (kind <= 5)  # cell_change, formula_change, range_change
    cell = rng.integers(0, len(_CELLS), size=n)
    batch_ids = [f"demo-{i:06d}" for i in range(n // 500 + 1)]
    old_value, new_value = (_take(_VALUES, rng.integers(0, len(_VALUES), size=n), is_edit) for _ in range(2))
    return {
        "event_id": _uuid_strings(rng, n),
        "event_type": _take(_TYPES, kind),
        "user_name": _take(people[0], ev["user"]),
        "machine_name": _take(people[1], ev["user"]),
        "session_id": _take(_uuid_strings(rng, sessions), ev["session"]),
        "workbook_name": _take(workbooks, ev["book"], kind >= 1),
        "sheet_name": _take(_SHEETS, (ev["book"] + rng.integers(0, 3, size=n)) % len(_SHEETS), is_edit),
        "cell_address": _take(_CELLS, cell, is_edit),
        "old_value": old_value,
        "new_value": new_value,
        "formula": _take(
            _FORMULA_TEXT, cell * len(_FORMULAS) + rng.integers(0, len(_FORMULAS), size=n), kind == 4
        ),
        "correlation_id": _take(_uuid_strings(rng, n // 25 + 1), np.arange(n) // 25, rng.random(n) < 0.04),
        "attributes": _attributes(rng, n, ev["session"], sessions),
        "batch_id": _take(batch_ids, np.arange(n) // 500),
    }


_CELLS: Final = tuple(f"{col}{row}" for col in _COLUMNS for row in range(1, 61))
_FORMULA_TEXT: Final = tuple(f"{fn}{c[0]}2:{c})" for c in _CELLS for fn in _FORMULAS)
_VALUES: Final = (
    *(str(v) for v in range(-50, 950, 7)),
    *(f"{v / 100:.2f}".rstrip("0").rstrip(".") for v in range(1, 250_000, 977)),
    *_LABELS,
    "",
    "false",
    "true",
)


def _attributes(
    rng: np.random.Generator, n: int, session_of: npt.NDArray[np.int64], sessions: int
) -> pa.Array:
    """`{"AddinVersion": "…", "ExcelBuild": "…"}` per event, constant within a session."""
    keys = _take(("AddinVersion", "ExcelBuild"), np.tile(np.arange(2, dtype=np.int64), n))
    items = np.empty(2 * n, dtype=np.int64)
    items[0::2] = rng.integers(0, len(_VERSIONS), size=sessions)[session_of]
    items[1::2] = rng.integers(0, len(_BUILDS), size=sessions)[session_of] + len(_VERSIONS)
    offsets = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, keys, _take((*_VERSIONS, *_BUILDS), items))
