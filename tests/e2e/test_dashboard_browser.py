"""The dashboard, /docs and /redoc in a real headless Chromium against a real `govtrack serve`, on both stores.

One server per store (module-scoped), seeded through POST /api/events with the events below; the
expected figures are plain Python over that list, never the API's own answers. The page is read
through the DOM (ids, data attributes, cell text). Also checked: no console error, no request
leaving 127.0.0.1 (Chromium's DevTools network log, on /, /docs and /redoc), values from add-ins
rendered as text, and a server with API keys asking for one and working once it is given.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.e2e.browser import chromium, console_entries, requested_urls, requests_sent, wait_for
from tests.e2e.server import Server, ServerDirs

pytestmark = pytest.mark.slow

BASE: Final = dt.datetime(2025, 5, 5, 8, 0, tzinfo=dt.UTC)
USERS: Final = ("CORP\\alice", "CORP\\bob", "EMEA\\chen")
BOOKS: Final = ("\\\\fs01\\finance\\Budget 2025.xlsx", "C:\\Users\\Public\\Forecast.xlsx")
TYPES: Final = ("cell_change", "cell_change", "formula_change", "workbook_save", "range_change")
HOSTILE_USER: Final = "<b>mallory</b>"
HOSTILE_BOOK: Final = "<script>window.__xss=2</script>.xlsx"
HOSTILE_VALUE: Final = '<img src="/xss-probe" onerror="window.__xss=1">'
READ_KEY: Final = "dashboard-read-key-0123456789"
INGEST_KEY: Final = "dashboard-ingest-key-0123456789"
NAMESPACE: Final = uuid.UUID("6f1c2a52-3c1e-4e8e-9f51-0b6a1d6c0001")
SEP: Final = "\u203a"  # single right-pointing angle quote, between workbook, sheet and cell
NO_FIGURE: Final = "\u2013"  # en dash, where a figure is not loaded


def seeded_events() -> list[dict[str, Any]]:
    """61 events over seven hours: three users, four sessions, two workbooks, one event of HTML.

    Cells are changed repeatedly, each change's old value being the cell's previous new value.
    """
    events: list[dict[str, Any]] = []
    last_value: dict[tuple[str, str], str] = {}
    for i in range(60):
        kind = TYPES[i % 5]
        book = BOOKS[i % 2]
        cell = None if kind == "workbook_save" else f"B{i % 5 + 1}"
        old = last_value.get((book, cell)) if cell else None
        new = str(i * 10) if cell else None
        if cell and new is not None:
            last_value[(book, cell)] = new
        events.append(
            {
                "event_id": str(uuid.uuid5(NAMESPACE, f"event-{i}")),
                "timestamp": (BASE + dt.timedelta(minutes=7 * i, seconds=i)).isoformat(),
                "event_type": kind,
                "user_name": USERS[i % 3],
                "machine_name": f"PC-{i % 3}",
                "session_id": f"s-{i % 4}",
                "workbook_name": book,
                "sheet_name": "Data",
                "cell_address": cell,
                "old_value": old,
                "new_value": new,
                "formula": f"=SUM(A1:A{i})" if kind == "formula_change" else None,
            }
        )
    events.append(
        {
            "event_id": str(uuid.uuid5(NAMESPACE, "hostile")),
            "timestamp": (BASE + dt.timedelta(hours=7)).isoformat(),
            "event_type": "cell_change",
            "user_name": HOSTILE_USER,
            "workbook_name": HOSTILE_BOOK,
            "sheet_name": "Data",
            "cell_address": "Z9",
            "new_value": HOSTILE_VALUE,
        }
    )
    return events


def newest_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The API's default order: timestamp, then event id, both descending."""
    return sorted(
        events, key=lambda e: (dt.datetime.fromisoformat(e["timestamp"]), e["event_id"]), reverse=True
    )


def shown_time(event: dict[str, Any]) -> str:
    """How the page shows a timestamp: UTC, to the second."""
    return dt.datetime.fromisoformat(event["timestamp"]).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Served:
    """A running server and every event posted to it."""

    server: Server
    kind: str
    read_key: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

    def post(self, events: list[dict[str, Any]], key: str | None = None) -> None:
        """Post and return once every event is readable (a store still opening spools them: 202)."""
        headers = {"X-API-Key": key} if key else {}
        resp = httpx.post(f"{self.base}/api/events", json={"events": events}, headers=headers, timeout=60)
        assert resp.status_code in (200, 202), resp.text
        assert resp.json()["accepted"] == len(events), resp.text
        self.events.extend(events)
        self.wait_readable()

    def wait_readable(self, timeout_s: float = 60.0) -> None:
        """Until /api/stats counts every posted event (bounded; a spooled batch is replayed first)."""
        headers = {"X-API-Key": self.read_key} if self.read_key else {}
        deadline = time.monotonic() + timeout_s
        while True:
            resp = httpx.get(f"{self.base}/api/stats", headers=headers, timeout=30)
            assert resp.status_code in (200, 503), resp.text  # 503: the store is still opening
            total = resp.json()["total_events"] if resp.status_code == 200 else None
            if total == len(self.events):
                return
            assert time.monotonic() < deadline, (
                f"{total} of {len(self.events)} readable:\n{self.server.log_tail()}"
            )
            time.sleep(0.1)


def _serve(root: Path, kind: str, api_keys: str | None = None) -> Server:
    dirs = ServerDirs(root)
    url = dirs.url_for(kind)
    server = Server(dirs, url, GOVTRACK_API_KEYS=api_keys) if api_keys else Server(dirs, url)
    server.wait_ready()
    return server


@pytest.fixture(scope="module", params=["parquet", "clickhouse"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A keyless server on one store (its own data directory), seeded."""
    server = _serve(tmp_path_factory.mktemp(f"dash-{request.param}"), request.param)
    try:
        served = Served(server, request.param)
        served.post(seeded_events())
        yield served
    finally:
        server.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Chrome]:
    with chromium() as browser:
        yield browser


def open_dashboard(driver: Chrome, base: str) -> None:
    """Load `/` and wait until every section has loaded (the page marks `body[data-ready]`).

    The browser lives for the module: the previous page (maybe of the previous store's server,
    stopped by now) is left first and its console drained, so its tail's reconnects to a closed
    port are not counted against this page (seen once in CI: ERR_CONNECTION_REFUSED).
    """
    driver.get("about:blank")
    console_entries(driver)
    driver.get(f"{base}/")
    wait_for(driver, "return document.body.dataset.ready === 'true'")
    wait_for(driver, "return document.querySelectorAll('#tail-table tbody tr[data-event-id]').length > 0")


def rows(driver: Chrome, table_id: str) -> list[list[str]]:
    """The text of every body cell of a table, row by row."""
    script = (
        "return [...document.querySelectorAll(arguments[0])].map(r => [...r.cells].map(c => c.textContent))"
    )
    result: list[list[str]] = driver.execute_script(script, f"#{table_id} tbody tr")
    return result


def row_ids(driver: Chrome, table_id: str) -> list[str]:
    script = "return [...document.querySelectorAll(arguments[0])].map(r => r.dataset.eventId)"
    result: list[str] = driver.execute_script(script, f"#{table_id} tbody tr[data-event-id]")
    return result


def text(driver: Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def number(driver: Chrome, element_id: str) -> int:
    return int(text(driver, element_id).replace(",", ""))


def chart(driver: Chrome) -> dict[str, str]:
    result: dict[str, str] = driver.execute_script(
        "return Object.assign({}, document.getElementById('timeseries-chart').dataset)"
    )
    return result


def hour_floor(value: dt.datetime) -> dt.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def assert_loopback_only(urls: list[str]) -> None:
    """Every network request went to 127.0.0.1.

    data:, blob: and the browser's own chrome://, about: and devtools: pages (its new-tab page
    loads chrome:// resources by itself, under load seen during a test) are not network requests.
    """
    internal = ("data", "blob", "chrome", "chrome-extension", "chrome-untrusted", "about", "devtools")
    network = [u for u in urls if urlsplit(u).scheme not in internal]
    outside = [u for u in network if urlsplit(u).hostname != "127.0.0.1"]
    assert network, "the DevTools network log recorded no request: the check would be empty"
    assert not outside, f"requests left 127.0.0.1: {outside}"


def test_dashboard_shows_the_seeded_figures(served: Served, driver: Chrome) -> None:
    console_entries(driver)
    open_dashboard(driver, served.base)
    events = served.events
    assert console_entries(driver) == []

    # totals
    assert number(driver, "total-events") == len(events)
    assert number(driver, "unique-users") == len({e["user_name"] for e in events})
    assert number(driver, "unique-workbooks") == len({e["workbook_name"] for e in events})
    assert number(driver, "unique-sessions") == len({e["session_id"] for e in events if e.get("session_id")})
    ordered = newest_first(events)
    assert text(driver, "first-event") == shown_time(ordered[-1])
    assert text(driver, "last-event") == shown_time(ordered[0])

    # the chart (per hour, by type) and its table
    by_type = Counter(e["event_type"] for e in events)
    stamps = [dt.datetime.fromisoformat(e["timestamp"]) for e in events]
    hours = int((hour_floor(max(stamps)) - hour_floor(min(stamps))) / dt.timedelta(hours=1)) + 1
    figures = chart(driver)
    assert figures["bucket"] == "hour"
    assert int(figures["points"]) == hours
    assert int(figures["seriesCount"]) == len(by_type)
    assert int(figures["total"]) == len(events)
    assert {r[0]: int(r[1].replace(",", "")) for r in rows(driver, "timeseries-table")} == dict(by_type)
    assert driver.find_element(By.CSS_SELECTOR, "#timeseries-chart canvas").size["height"] > 100
    Select(driver.find_element(By.ID, "bucket-select")).select_by_value("day")
    wait_for(
        driver,
        "const d = document.getElementById('timeseries-chart').dataset; return d.bucket === 'day' && d.state === 'ready'",
    )
    assert int(chart(driver)["points"]) == len({s.date() for s in stamps})
    assert {r[0]: int(r[1].replace(",", "")) for r in rows(driver, "timeseries-table")} == dict(by_type)

    # top users and workbooks, sessions, the latest events
    users = Counter(e["user_name"] for e in events)
    books = Counter(e["workbook_name"] for e in events)
    assert {r[0]: int(r[1].replace(",", "")) for r in rows(driver, "top-users-table")} == dict(users)
    assert {r[0]: int(r[1].replace(",", "")) for r in rows(driver, "top-workbooks-table")} == dict(books)
    sessions = Counter(e["session_id"] for e in events if e.get("session_id"))
    shown_sessions = driver.execute_script(
        "return [...document.querySelectorAll('#sessions-table tbody tr')]"
        ".map(r => [r.dataset.sessionId, r.cells[3].textContent])"
    )
    assert {s: int(n) for s, n in shown_sessions} == dict(sessions)
    assert row_ids(driver, "tail-table") == [e["event_id"] for e in ordered[:10]]
    assert row_ids(driver, "events-table") == [e["event_id"] for e in ordered[:25]]

    # values from add-ins are text, never markup
    assert driver.execute_script("return window.__xss") is None
    assert (
        driver.execute_script("return document.querySelectorAll('main img, main script, main b').length") == 0
    )
    hostile = driver.find_element(By.CSS_SELECTOR, "#events-table tbody tr:first-child")
    cells = hostile.find_elements(By.TAG_NAME, "td")
    assert cells[2].text == HOSTILE_USER
    assert (
        cells[7].get_attribute("data-value") == HOSTILE_VALUE
    )  # new value: shown as text, whole in data-value
    assert HOSTILE_BOOK in [r[0] for r in rows(driver, "top-workbooks-table")]
    assert console_entries(driver) == []


def test_filter_paging_cell_history_and_tail(served: Served, driver: Chrome) -> None:
    console_entries(driver)
    open_dashboard(driver, served.base)
    assert console_entries(driver) == []

    # filter: bob's cell changes, five per page, followed to the last page and one back
    form = driver.find_element(By.ID, "events-form")
    form.find_element(By.NAME, "user_name").send_keys("CORP\\bob")
    Select(form.find_element(By.NAME, "event_type")).select_by_value("cell_change")
    Select(form.find_element(By.NAME, "limit")).select_by_value("5")
    driver.find_element(By.ID, "events-search").click()
    wait_for(driver, "return document.getElementById('events-table').dataset.state === 'ready'")
    expected = [
        e["event_id"]
        for e in newest_first(served.events)
        if e["user_name"] == "CORP\\bob" and e["event_type"] == "cell_change"
    ]
    assert len(expected) > 5  # more than one page
    pages = [row_ids(driver, "events-table")]
    while driver.find_element(By.ID, "events-next").is_enabled():
        driver.find_element(By.ID, "events-next").click()
        wait_for(driver, "return document.getElementById('events-table').dataset.state === 'ready'")
        pages.append(row_ids(driver, "events-table"))
        assert text(driver, "events-page") == f"page {len(pages)}"
    assert [i for page in pages for i in page] == expected
    assert [len(p) for p in pages[:-1]] == [5] * (len(pages) - 1)
    driver.find_element(By.ID, "events-prev").click()
    wait_for(driver, "return document.getElementById('events-table').dataset.state === 'ready'")
    assert row_ids(driver, "events-table") == pages[-2]

    # a bad filter is the API's message in the explorer, not a broken page
    driver.find_element(By.ID, "events-reset").click()
    wait_for(driver, "return document.getElementById('events-table').dataset.state === 'ready'")
    form.find_element(By.NAME, "from").send_keys("yesterday")
    driver.find_element(By.ID, "events-search").click()
    wait_for(driver, "return document.getElementById('events-table').dataset.state === 'error'")
    assert "from" in text(driver, "events-status")
    bad = console_entries(driver)  # Chromium logs every 4xx answer; this one is the refused filter
    assert bad, "Chromium logged no refused request"
    assert all("from=yesterday" in m and "400" in m for m in bad), bad
    form.find_element(By.NAME, "from").clear()

    # cell history, picked from the events table: who changed it, when, from what to what
    book, cell = BOOKS[0], "B1"
    form.find_element(By.NAME, "workbook_name").send_keys(book)
    form.find_element(By.NAME, "cell_address").send_keys(cell)
    driver.find_element(By.ID, "events-search").click()
    wait_for(driver, "return document.getElementById('events-table').dataset.state === 'ready'")
    driver.find_element(By.CSS_SELECTOR, "#events-table tbody tr [data-testid='cell-link']").click()
    wait_for(driver, "return document.getElementById('cell-history-table').dataset.state === 'ready'")
    changes = [
        e
        for e in newest_first(served.events)
        if (e["workbook_name"], e["sheet_name"], e["cell_address"]) == (book, "Data", cell)
    ]
    assert len(changes) >= 3
    assert rows(driver, "cell-history-table") == [
        [
            shown_time(e),
            e["user_name"],
            e["event_type"],
            e["old_value"] or "null",
            e["new_value"],
            "null",
            e["machine_name"],
        ]
        for e in changes
    ]
    assert text(driver, "cell-status").startswith(
        f"{len(changes)} changes of Budget 2025.xlsx {SEP} Data {SEP} B1"
    )

    # cell history, typed in: the hostile cell, and a cell nobody changed
    cell_form = driver.find_element(By.ID, "cell-form")
    for name, value in (("workbook_name", HOSTILE_BOOK), ("sheet_name", "Data"), ("cell_address", "Z9")):
        cell_form.find_element(By.NAME, name).clear()
        cell_form.find_element(By.NAME, name).send_keys(value)
    driver.find_element(By.ID, "cell-search").click()
    wait_for(driver, "return document.getElementById('cell-history-table').dataset.state === 'ready'")
    assert [r[1] for r in rows(driver, "cell-history-table")] == [HOSTILE_USER]
    cell_form.find_element(By.NAME, "cell_address").clear()
    cell_form.find_element(By.NAME, "cell_address").send_keys("Q99")
    driver.find_element(By.ID, "cell-search").click()
    wait_for(driver, "return document.getElementById('cell-history-table').dataset.state === 'ready'")
    assert rows(driver, "cell-history-table") == [["No recorded change of this cell"]]

    # the latest-events tail picks up new events by itself, from the event stream (GET /api/events/stream)
    assert driver.execute_script("return document.getElementById('tail-table').dataset.mode") == "live"
    fresh = {
        "event_id": str(uuid.uuid5(NAMESPACE, "fresh")),
        "timestamp": (BASE + dt.timedelta(hours=9)).isoformat(),
        "event_type": "workbook_save",
        "user_name": "CORP\\dora",
        "workbook_name": BOOKS[1],
    }
    # ...in the order they are stored: an event stamped a day before the others still comes first,
    # which polling for the newest by timestamp would never show
    late = fresh | {
        "event_id": str(uuid.uuid5(NAMESPACE, "late")),
        "timestamp": (BASE - dt.timedelta(days=1)).isoformat(),
    }
    assert fresh["event_id"] not in row_ids(driver, "tail-table")
    for posted in (fresh, late):
        served.post([posted])
        wait_for(
            driver,
            f"return document.querySelector('#tail-table tbody tr')?.dataset.eventId === '{posted['event_id']}'",
        )
    assert row_ids(driver, "tail-table")[:2] == [late["event_id"], fresh["event_id"]]
    assert len(row_ids(driver, "tail-table")) == 10
    streams = [r for r in requests_sent(driver) if urlsplit(r["url"]).path == "/api/events/stream"]
    assert streams, "the tail opened no event stream"
    assert console_entries(driver) == []
    assert driver.execute_script("return window.__xss") is None


def test_no_request_leaves_loopback_on_dashboard_docs_and_redoc(served: Served, driver: Chrome) -> None:
    requested_urls(driver)
    console_entries(driver)
    open_dashboard(driver, served.base)
    dashboard = requested_urls(driver)

    driver.get(f"{served.base}/docs")
    wait_for(
        driver, "return document.querySelector('.swagger-ui .info .title')?.textContent.includes('govtrack')"
    )
    wait_for(driver, "return document.querySelectorAll('.swagger-ui .opblock').length > 10")
    docs = requested_urls(driver)

    driver.get(f"{served.base}/redoc")
    wait_for(
        driver, "return [...document.querySelectorAll('h1')].some(h => h.textContent.includes('govtrack'))"
    )
    wait_for(driver, "return document.querySelectorAll('[data-section-id]').length > 10")
    redoc = requested_urls(driver)

    assert console_entries(driver) == []
    for urls in (dashboard, docs, redoc):
        assert_loopback_only(urls)
    paths = {urlsplit(u).path for u in dashboard + docs + redoc}
    assert {
        "/static/vendor/uplot/uPlot.iife.min.js",
        "/static/dashboard.js",
        "/api/stats",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/redoc/redoc.standalone.js",
        "/openapi.json",
    } <= paths
    assert "/xss-probe" not in paths


def test_server_with_keys_asks_for_one_then_works(
    served: Served, driver: Chrome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    keys = f"{READ_KEY}:read,{INGEST_KEY}:ingest"
    server = _serve(tmp_path_factory.mktemp(f"dash-keys-{served.kind}"), served.kind, api_keys=keys)
    try:
        keyed = Served(server, served.kind, read_key=READ_KEY)
        keyed.post(seeded_events()[:20], key=INGEST_KEY)
        driver.get(f"{server.base}/")  # the HTML itself needs no key
        driver.execute_script("sessionStorage.clear()")
        requested_urls(driver)
        console_entries(driver)
        driver.get(f"{server.base}/")
        wait_for(driver, "return !document.getElementById('auth-panel').hidden")
        assert "API key with the read scope" in text(driver, "auth-message")
        assert text(driver, "total-events") == NO_FIGURE
        refused = console_entries(driver)
        assert refused, "Chromium logged no refused request"
        assert all("401" in m for m in refused), refused

        def give(key: str) -> None:
            box = driver.find_element(By.ID, "api-key-input")
            box.send_keys(key)
            driver.find_element(By.ID, "auth-submit").click()

        give(INGEST_KEY)  # a valid key without the read scope
        wait_for(
            driver, "return document.getElementById('auth-message').textContent.includes('may not read')"
        )
        give("not-a-key")
        wait_for(
            driver, "return document.getElementById('auth-message').textContent.includes('not accepted')"
        )
        refused = console_entries(driver)
        assert refused, "Chromium logged no refused request"
        assert all(" 401 " in m or " 403 " in m for m in refused), refused
        give(READ_KEY)
        wait_for(driver, "return document.body.dataset.ready === 'true'")
        assert driver.find_element(By.ID, "auth-panel").is_displayed() is False
        assert number(driver, "total-events") == 20
        assert driver.execute_script("return sessionStorage.getItem('govtrack.apiKey')") == READ_KEY
        entering = requests_sent(driver)
        driver.refresh()  # the key is kept for the tab
        open_dashboard(driver, server.base)
        assert number(driver, "total-events") == 20
        assert console_entries(driver) == []
        reloaded = requests_sent(driver)
        for sent in (entering, reloaded):
            urls = [str(r["url"]) for r in sent]
            assert_loopback_only(urls)
            assert not [u for u in urls if READ_KEY in u or INGEST_KEY in u or "not-a-key" in u], urls
        keys_sent = [
            {r["headers"].get("X-API-Key") for r in sent if urlsplit(r["url"]).path.startswith("/api/")}
            for sent in (entering, reloaded)
        ]
        assert keys_sent == [{None, INGEST_KEY, "not-a-key", READ_KEY}, {READ_KEY}]  # in the header only
    finally:
        server.stop()
