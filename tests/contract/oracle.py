"""Every figure a store derives, recomputed in plain Python from the events themselves.

The crash tests use it as their oracle: after any crash and restart, every statistic a store
answers (totals, by type, top lists, unique counts, sessions, time series) must equal what these
functions compute from the stored events read back one by one. Nothing here calls store code.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.contract.events import Row

__all__ = ["Figures", "SessionFigures", "figures", "hour_series"]

HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class SessionFigures:
    """What /api/sessions reports for one session."""

    session_id: str
    user_name: str
    machine_name: str | None
    start_time: dt.datetime
    end_time: dt.datetime
    event_count: int
    workbooks: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    """What /api/stats reports over all events, plus every session."""

    total_events: int
    unique_users: int
    unique_workbooks: int
    unique_sessions: int
    first_event_at: dt.datetime | None
    last_event_at: dt.datetime | None
    by_event_type: list[tuple[str, int]]
    top_users: list[tuple[str, int]]
    top_workbooks: list[tuple[str, int]]
    sessions: dict[str, SessionFigures]


def _ranked(values: list[Any], top: int | None) -> list[tuple[str, int]]:
    counts = Counter(v for v in values if v is not None)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _sessions(rows: list[Row]) -> dict[str, SessionFigures]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if row["session_id"] is not None:
            groups.setdefault(row["session_id"], []).append(row)
    out = {}
    for sid, members in groups.items():
        first = min(members, key=lambda r: (r["timestamp"], r["event_id"]))
        out[sid] = SessionFigures(
            session_id=sid,
            user_name=first["user_name"],
            machine_name=first["machine_name"],
            start_time=min(r["timestamp"] for r in members),
            end_time=max(r["timestamp"] for r in members),
            event_count=len(members),
            workbooks=tuple(sorted({r["workbook_name"] for r in members} - {None})),
        )
    return out


def figures(rows: list[Row], top: int = 10) -> Figures:
    """The contract's figures over `rows`, which must hold each event once (checked)."""
    ids = [r["event_id"] for r in rows]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"the oracle's input holds {len(dupes)} duplicate ids, e.g. {dupes[:3]}"
    stamps = [r["timestamp"] for r in rows]
    return Figures(
        total_events=len(rows),
        unique_users=len({r["user_name"] for r in rows}),
        unique_workbooks=len({r["workbook_name"] for r in rows} - {None}),
        unique_sessions=len({r["session_id"] for r in rows} - {None}),
        first_event_at=min(stamps) if stamps else None,
        last_event_at=max(stamps) if stamps else None,
        by_event_type=_ranked([r["event_type"] for r in rows], None),
        top_users=_ranked([r["user_name"] for r in rows], top),
        top_workbooks=_ranked([r["workbook_name"] for r in rows], top),
        sessions=_sessions(rows),
    )


def hour_series(rows: list[Row], group_by: str | None) -> dict[tuple[dt.datetime, str | None], int]:
    """Events per (UTC hour, group), non-zero buckets only."""
    counts: Counter[tuple[dt.datetime, str | None]] = Counter()
    for row in rows:
        ts: dt.datetime = row["timestamp"]
        hour = ts.replace(minute=0, second=0, microsecond=0)
        counts[(hour, None if group_by is None else row[group_by])] += 1
    return dict(counts)
