"""A time series is refused before it is built when buckets x groups exceed the cap (every store).

Only the bucket count used to be capped: 5,200 minute buckets x 701 users was built as 3.6M
points (26 s, 3.2 GB). The cap counts points of the zero-filled grid; the stores refuse from the
non-empty cells they fetched (at most cap + 1 of them) before any zero-filling.
"""

from __future__ import annotations

import datetime as dt

import pytest

from storage.base import EventFilter, EventStore
from storage.errors import InvalidQueryError
from tests.contract.events import BASE, event, table

H = dt.timedelta(hours=1)


def _users(store: EventStore, users: int, hours: int) -> None:
    """One event per user, user i at hour i % hours: `users` groups over `hours` hourly buckets."""
    store.append(
        table([event(i, user_name=f"u{i:04d}", timestamp=BASE + (i % hours) * H) for i in range(users)])
    )


@pytest.mark.parametrize("time_only", [True, False], ids=["time-only", "filtered"])
def test_points_over_the_cap_are_refused(store: EventStore, time_only: bool) -> None:
    _users(store, users=30, hours=10)  # 10 hourly buckets x 30 users = 300 points
    flt = EventFilter(start=BASE, end=BASE + 10 * H)
    if not time_only:
        flt = EventFilter(start=BASE, end=BASE + 10 * H, event_types=("cell_change",))
    with pytest.raises(InvalidQueryError, match="points"):
        store.timeseries(flt, "hour", "user_name", 299)
    assert store.timeseries(flt, "hour", "user_name", 300).num_rows == 300
    assert store.timeseries(flt, "hour", None, 10).num_rows == 10
    with pytest.raises(InvalidQueryError, match="points"):
        store.timeseries(flt, "hour", None, 9)
    one_user = EventFilter(start=BASE, end=BASE + 10 * H, user_names=("u0003",))
    got = store.timeseries(one_user, "hour", "user_name", 10)
    assert got.column("group").to_pylist() == ["u0003"] * 10
    assert got.column("count").to_pylist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
def test_event_type_groups_from_rollups_are_capped_too(store: EventStore, bucket: str) -> None:
    types = [f"type_{i}" for i in range(12)]
    store.append(table([event(i, event_type=types[i % 12], timestamp=BASE + i * H) for i in range(48)]))
    flt = EventFilter(start=BASE - 24 * H, end=BASE + 72 * H)  # a time-only filter: rollups answer
    buckets = store.timeseries(flt, bucket, None).num_rows  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="points"):
        store.timeseries(flt, bucket, "event_type", buckets * 12 - 1)  # type: ignore[arg-type]
    assert store.timeseries(flt, bucket, "event_type", buckets * 12).num_rows == buckets * 12  # type: ignore[arg-type]


def test_the_hostile_grid_is_refused_without_being_built(store: EventStore) -> None:
    """701 users over 5,200 minute buckets (3.6M points): refused at the default-sized cap.

    Built, this grid took 26 s and 3.2 GB; refused, it costs one grouped count.
    """
    _users(store, users=701, hours=80)
    flt = EventFilter(start=BASE, end=BASE + dt.timedelta(minutes=5_200))
    with pytest.raises(InvalidQueryError, match="points"):
        store.timeseries(flt, "minute", "user_name", 250_000)
    with pytest.raises(InvalidQueryError, match="points"):
        store.timeseries(EventFilter(), "minute", "user_name", 250_000)
