"""GovtrackClient against the real app over every store (the TestClient is its HTTP transport)."""

from __future__ import annotations

import polars as pl
import pytest
from fastapi.testclient import TestClient

from analytics.client import GovtrackClient, GovtrackError
from storage.base import EventStore
from tests.api.readkit import frame, seed


@pytest.fixture
def analyst(client: TestClient) -> GovtrackClient:
    return GovtrackClient("http://testserver", http=client)


def test_events_follow_cursors_into_one_frame(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 260))
    got = analyst.events(page_rows=100)
    assert got.height == 260
    assert (
        got["event_id"].to_list() == df.sort(["timestamp", "event_id"], descending=True)["event_id"].to_list()
    )
    assert got.schema["timestamp"] == pl.Datetime("us", "UTC")
    user = df["user_name"][0]
    mine = analyst.events(user_name=user, event_type=["cell_change"], order="asc", page_rows=50)
    want = df.filter((pl.col("user_name") == user) & (pl.col("event_type") == "cell_change"))
    assert mine["event_id"].to_list() == want.sort(["timestamp", "event_id"])["event_id"].to_list()
    assert analyst.events(max_rows=30, page_rows=7).height == 30


def test_stats_timeseries_sessions_and_cells(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 200))
    assert analyst.stats()["total_events"] == 200
    assert analyst.stats(top=1)["top_users"][0]["count"] == df.group_by("user_name").len()["len"].max()
    series = analyst.timeseries("day", group_by="event_type")
    assert series.columns == ["ts", "group", "count"]
    assert series["count"].sum() == 200
    assert series.schema["ts"] == pl.Datetime("us", "UTC")
    sessions = analyst.sessions()
    assert sessions.height == df["session_id"].n_unique()
    assert sessions.schema["start_time"] == pl.Datetime("us", "UTC")
    edit = df.filter(pl.col("cell_address").is_not_null()).row(0, named=True)
    history = analyst.cell_history(edit["workbook_name"], edit["sheet_name"], edit["cell_address"])
    assert edit["event_id"] in history["event_id"].to_list()


def test_errors_carry_the_contract_code(analyst: GovtrackClient) -> None:
    with pytest.raises(GovtrackError) as caught:
        analyst.timeseries("fortnight")
    assert caught.value.status == 400
    assert caught.value.code == "invalid_query"
    with pytest.raises(GovtrackError):
        analyst.events(limit_is_not_a_filter=None, to="not a date")
