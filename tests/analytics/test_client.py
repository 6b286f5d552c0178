"""GovtrackClient against the real app over every store.

In-process tests use the TestClient as the client's HTTP transport (the real app, middleware and
error handlers; nothing mocked); overload is produced for real: a 503 by a store that is down
(tests.faults), a 429 by an export holding the only large-read permit. The last tests run the
client against a `govtrack serve` subprocess on each store, with API keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from analytics.client import EventFilters, GovtrackClient, GovtrackError, RetryPolicy
from analytics.demo import generate_events
from api.app import create_app
from api.settings import Settings
from storage.base import EventStore
from tests.api.readkit import START, frame, seed
from tests.e2e.server import Server, ServerDirs
from tests.faults import FaultyStore, PausingExports


@pytest.fixture
def analyst(client: TestClient) -> GovtrackClient:
    return GovtrackClient("http://testserver", http=client)


def ordered_ids(df: pl.DataFrame, desc: bool = True) -> list[str]:
    return df.sort(["timestamp", "event_id"], descending=desc)["event_id"].to_list()


def test_events_follow_cursors_into_one_frame(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 260))
    got = analyst.events(page_rows=100)
    assert got.height == 260
    assert got["event_id"].to_list() == ordered_ids(df)
    assert got.schema["timestamp"] == pl.Datetime("us", "UTC")
    user = df["user_name"][0]
    mine = analyst.events(user_name=user, event_type=["cell_change"], order="asc", page_rows=50)
    want = df.filter((pl.col("user_name") == user) & (pl.col("event_type") == "cell_change"))
    assert mine["event_id"].to_list() == ordered_ids(want, desc=False)
    assert analyst.events(max_rows=30, page_rows=7).height == 30


def test_iter_events_yields_one_frame_per_page(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 250))
    pages = list(analyst.iter_events(page_rows=100, order="asc"))
    assert [p.height for p in pages] == [100, 100, 50]
    assert pl.concat(pages)["event_id"].to_list() == ordered_ids(df, desc=False)
    assert [p.height for p in analyst.iter_events(page_rows=100, max_rows=120)] == [100, 20]
    empty = list(analyst.iter_events(user_name="nobody"))
    assert len(empty) == 1
    assert empty[0].height == 0
    assert "event_id" in empty[0].columns


def _filter_cases(df: pl.DataFrame) -> list[tuple[EventFilters, pl.Expr]]:
    """Each filter of the contract with a value that hits, and the same condition in polars."""
    edit = df.filter(pl.col("cell_address").is_not_null() & pl.col("correlation_id").is_not_null()).row(
        0, named=True
    )
    mid = df.sort("timestamp")["timestamp"][df.height // 2]
    late = df.sort("timestamp")["timestamp"][(3 * df.height) // 4]
    types = ["formula_change", "session_start"]
    users = df["user_name"].unique().sort().to_list()[:2]
    text = str(edit["new_value"])
    return [
        ({"from_": mid}, pl.col("timestamp") >= mid),
        ({"to": mid}, pl.col("timestamp") < mid),
        ({"from_": mid, "to": late}, pl.col("timestamp").is_between(mid, late, closed="left")),
        ({"event_type": types}, pl.col("event_type").is_in(types)),
        ({"user_name": users}, pl.col("user_name").is_in(users)),
        ({"workbook_name": edit["workbook_name"]}, pl.col("workbook_name") == edit["workbook_name"]),
        ({"sheet_name": [edit["sheet_name"]]}, pl.col("sheet_name") == edit["sheet_name"]),
        ({"machine_name": edit["machine_name"]}, pl.col("machine_name") == edit["machine_name"]),
        ({"session_id": edit["session_id"]}, pl.col("session_id") == edit["session_id"]),
        ({"correlation_id": edit["correlation_id"]}, pl.col("correlation_id") == edit["correlation_id"]),
        ({"cell_address": edit["cell_address"]}, pl.col("cell_address") == edit["cell_address"]),
        (
            {"text": text},
            pl.any_horizontal(
                pl.col(c).str.contains(text, literal=True) for c in ("old_value", "new_value", "formula")
            ),
        ),
    ]


def test_every_filter_matches_polars_over_the_input(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 400))
    for filters, condition in _filter_cases(df):
        want = df.filter(condition.fill_null(False))
        assert want.height > 0, filters
        got = analyst.events(**filters)
        assert got["event_id"].to_list() == ordered_ids(want), filters
        assert analyst.stats(**filters).total_events == want.height, filters


def test_event_by_id_and_its_404(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 40))
    row = df.row(7, named=True)
    got = analyst.event(row["event_id"])
    assert got.height == 1
    assert got.row(0, named=True)["user_name"] == row["user_name"]
    assert got["timestamp"][0] == row["timestamp"]
    with pytest.raises(GovtrackError) as caught:
        analyst.event("00000000-0000-4000-8000-000000000000")
    error = caught.value
    assert (error.status, error.code) == (404, "not_found")
    assert error.request_id
    assert error.details == []
    assert error.request_id in str(error)


def test_stats_timeseries_sessions_and_cells(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 200))
    stats = analyst.stats()
    assert stats.total_events == 200
    assert stats.unique_users == df["user_name"].n_unique()
    assert stats.unique_sessions == df["session_id"].n_unique()
    assert stats.first_event_at == df["timestamp"].min()
    assert stats.last_event_at == df["timestamp"].max()
    want_types = (
        df.group_by("event_type").len("count").sort(["count", "event_type"], descending=[True, False])
    )
    assert stats.by_event_type.rows() == want_types.rows()
    assert analyst.stats(top=1).top_users["count"].to_list() == [df.group_by("user_name").len()["len"].max()]
    series = analyst.timeseries("day", group_by="event_type")
    assert series.columns == ["ts", "group", "count"]
    assert series["count"].sum() == 200
    assert series.schema["ts"] == pl.Datetime("us", "UTC")
    cell_changes = series.filter(pl.col("group") == "cell_change")["count"].sum()
    assert cell_changes == df.filter(pl.col("event_type") == "cell_change").height
    edit = df.filter(pl.col("cell_address").is_not_null()).row(0, named=True)
    history = analyst.cell_history(edit["workbook_name"], edit["sheet_name"], edit["cell_address"])
    want_history = df.filter(
        (pl.col("workbook_name") == edit["workbook_name"])
        & (pl.col("sheet_name") == edit["sheet_name"])
        & (pl.col("cell_address") == edit["cell_address"])
    )
    assert sorted(history["event_id"].to_list()) == sorted(want_history["event_id"].to_list())


def test_sessions_page_and_one_session(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 300))
    per_session = (
        df.filter(pl.col("session_id").is_not_null())
        .group_by("session_id")
        .agg(pl.len().alias("event_count"), pl.col("user_name").first())
    )
    pages = list(analyst.iter_sessions(page_rows=4))
    assert all(p.height <= 4 for p in pages)
    assert len(pages) >= per_session.height // 4
    sessions = analyst.sessions()
    assert sessions.height == per_session.height
    assert sessions.schema["start_time"] == pl.Datetime("us", "UTC")
    assert pl.concat(pages)["session_id"].to_list() == sessions["session_id"].to_list()
    assert analyst.sessions(max_rows=3).height == 3
    some = per_session.row(0, named=True)
    one = analyst.session(some["session_id"])
    assert one.row(0, named=True)["event_count"] == some["event_count"]
    user = analyst.sessions(user_name=some["user_name"])
    assert user.height == per_session.filter(pl.col("user_name") == some["user_name"]).height
    with pytest.raises(GovtrackError) as caught:
        analyst.session("no-such-session")
    assert caught.value.code == "not_found"


def test_export_manifest_matches_the_files(
    analyst: GovtrackClient, store: EventStore, tmp_path: Path
) -> None:
    df = frame(seed(store, 150))
    cut = df.sort("timestamp")["timestamp"][100]
    manifest = analyst.export(to=cut, destination="one/export")
    assert manifest.rows == 100
    assert manifest.files["rows"].sum() == 100
    root = Path(manifest.destination)
    for path, sha in manifest.files.select("path", "sha256").iter_rows():
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == sha
    with pytest.raises(GovtrackError) as caught:
        analyst.export(destination="../outside")
    assert (caught.value.status, caught.value.code) == (400, "invalid_destination")
    assert caught.value.details[0]["field"] == "destination"


def test_scan_events_defers_the_read(analyst: GovtrackClient, store: EventStore) -> None:
    df = frame(seed(store, 120))
    lazy = analyst.scan_events(event_type="cell_change")
    assert lazy.collect_schema()["timestamp"] == pl.Datetime("us", "UTC")
    store.append(generate_events(30, seed=99, start=START, days=1))  # arrives before collect
    later = frame(generate_events(30, seed=99, start=START, days=1))
    want = pl.concat([df, later]).filter(pl.col("event_type") == "cell_change")
    counted = lazy.group_by("user_name").len().collect()
    assert counted["len"].sum() == want.height


def test_errors_carry_the_contract_code(analyst: GovtrackClient) -> None:
    with pytest.raises(GovtrackError) as caught:
        analyst.timeseries("fortnight")  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert caught.value.code == "invalid_query"
    with pytest.raises(GovtrackError) as bad_date:
        analyst.events(to="not a date")
    assert (bad_date.value.status, bad_date.value.code) == (400, "invalid_query")
    assert any(d.get("field") == "to" for d in bad_date.value.details)


# -- overload, produced for real ---------------------------------------------------------------


@pytest.fixture
def app_over(tmp_path: Path) -> Iterator[Callable[[EventStore], TestClient]]:
    """A TestClient over `store` with short Retry-After values and one large read at a time."""
    opened: list[TestClient] = []

    def make(store: EventStore) -> TestClient:
        settings = Settings(
            store_url=f"parquet://{tmp_path / 'unused-store'}",
            spool_dir=tmp_path / "spool",
            archive_url=str(tmp_path / "archive"),
            retry_after_s=3,
            overload_retry_after_s=2,
            max_concurrent_large_reads=1,
        )
        test_client = TestClient(create_app(settings, store=store))
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.__exit__(None, None, None)


def test_503_is_retried_after_the_servers_retry_after(
    store: EventStore, app_over: Callable[[EventStore], TestClient]
) -> None:
    df = frame(seed(store, 50))
    faulty = FaultyStore(store)
    waits: list[float] = []
    seen: list[GovtrackError] = []

    def store_recovers(error: GovtrackError, wait: float) -> None:
        seen.append(error)
        faulty.come_up()

    policy = RetryPolicy(on_retry=store_recovers, sleep=waits.append)
    analyst = GovtrackClient("http://testserver", http=app_over(faulty), retry=policy)
    faulty.go_down()
    assert analyst.events()["event_id"].to_list() == ordered_ids(df)
    assert waits == [3.0]  # the server's GOVTRACK_RETRY_AFTER_S
    assert [(e.status, e.code) for e in seen] == [(503, "store_unavailable")]
    faulty.go_down()
    assert analyst.stats().total_events == 50  # the JSON endpoints retry the same way
    assert waits == [3.0, 3.0]


def test_retries_are_bounded_and_capped(
    store: EventStore, app_over: Callable[[EventStore], TestClient]
) -> None:
    faulty = FaultyStore(store)
    waits: list[float] = []
    policy = RetryPolicy(max_retries=2, max_wait_s=0.5, sleep=waits.append)
    analyst = GovtrackClient("http://testserver", http=app_over(faulty), retry=policy)
    faulty.go_down()
    with pytest.raises(GovtrackError) as caught:
        analyst.timeseries("day")
    assert (caught.value.status, caught.value.code) == (503, "store_unavailable")
    assert caught.value.retry_after_s == 3.0
    assert waits == [0.5, 0.5]  # Retry-After 3 s, capped at max_wait_s, twice, then given up
    with pytest.raises(GovtrackError):
        analyst.events()
    assert waits == [0.5] * 4


def test_429_while_an_export_holds_the_only_large_read(
    store: EventStore, app_over: Callable[[EventStore], TestClient]
) -> None:
    df = frame(seed(store, 80))
    blocked = PausingExports(store)
    http = app_over(blocked)
    waits: list[float] = []
    seen: list[GovtrackError] = []
    exporter = GovtrackClient("http://testserver", http=http)
    export_done: list[int] = []
    worker = threading.Thread(target=lambda: export_done.append(exporter.export().rows))
    worker.start()
    try:
        assert blocked.entered.wait(60)

        def export_finishes(error: GovtrackError, wait: float) -> None:
            seen.append(error)
            blocked.release.set()
            worker.join(60)

        policy = RetryPolicy(on_retry=export_finishes, sleep=waits.append)
        analyst = GovtrackClient("http://testserver", http=http, retry=policy)
        got = analyst.events(page_rows=20_000)  # a streamed read over 10,000 rows needs a permit
    finally:
        blocked.release.set()
        worker.join(60)
    assert got["event_id"].to_list() == ordered_ids(df)
    assert [(e.status, e.code) for e in seen] == [(429, "too_many_large_reads")]
    assert seen[0].request_id
    assert waits == [2.0]  # the server's GOVTRACK_OVERLOAD_RETRY_AFTER_S
    assert export_done == [80]


# -- a live server on each store, with keys -----------------------------------------------------

READ_KEY = "analyst-read-key-0123456789"
ADMIN_KEY = "operator-admin-key-0123456789"
INGEST_KEY = "addin-ingest-key-0123456789"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_live_server_with_api_keys(kind: str, tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path)
    keys = f"{READ_KEY}:read,{ADMIN_KEY}:read+admin,{INGEST_KEY}:ingest"
    server = Server(dirs, dirs.url_for(kind), GOVTRACK_API_KEYS=keys)
    try:
        server.wait_ready()
        table = generate_events(2_500, seed=21, start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3), days=2)
        with GovtrackClient(server.base, INGEST_KEY) as producer:
            answer = producer.ingest(table.drop_columns(["received_at", "batch_id"]))
        assert (answer["status"], answer["accepted"]) == ("stored", 2_500)
        df = frame(table)
        with GovtrackClient(server.base) as anonymous, pytest.raises(GovtrackError) as caught:
            anonymous.stats()
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        with GovtrackClient(server.base, READ_KEY) as analyst:
            _check_reads(analyst, df)
            with pytest.raises(GovtrackError) as forbidden:
                analyst.export()
            assert forbidden.value.status == 403
        with GovtrackClient(server.base, ADMIN_KEY) as operator:
            manifest = operator.export(event_type="formula_change")
        assert manifest.rows == df.filter(pl.col("event_type") == "formula_change").height
        exported = pl.read_parquet(Path(manifest.destination) / "**" / "*.parquet", hive_partitioning=False)
        assert sorted(exported["event_id"].to_list()) == sorted(
            df.filter(pl.col("event_type") == "formula_change")["event_id"].to_list()
        )
    finally:
        server.stop()


def _check_reads(analyst: GovtrackClient, df: pl.DataFrame) -> None:
    got = analyst.events(page_rows=1_000)
    assert got["event_id"].to_list() == ordered_ids(df)
    assert sum(p.height for p in analyst.iter_events(page_rows=600, user_name=df["user_name"][0])) == (
        df.filter(pl.col("user_name") == df["user_name"][0]).height
    )
    assert analyst.stats().total_events == 2_500
    hourly = analyst.timeseries("hour", group_by="user_name")
    assert hourly["count"].sum() == 2_500
    assert analyst.sessions().height == df["session_id"].n_unique()
    one = df.row(3, named=True)
    assert analyst.event(one["event_id"])["event_id"].to_list() == [one["event_id"]]
    assert analyst.session(one["session_id"])["event_count"][0] == (
        df.filter(pl.col("session_id") == one["session_id"]).height
    )
