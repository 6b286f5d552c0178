"""Screenshot of the dashboard over demo data, for the README: `python -m tests.e2e.screenshot`.

Starts `govtrack serve` on a temporary Parquet store, posts a few thousand demo events
(analytics.demo) through POST /api/events as an Arrow stream, opens `/` in headless Chromium and
saves the whole page as docs/dashboard.png (or `--out`). On demand only; not part of `make test`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import tempfile
from pathlib import Path

import httpx
import polars as pl
import pyarrow as pa
from selenium.webdriver.common.by import By

from analytics.demo import generate_events
from tests.e2e.browser import chromium, console_entries, wait_for
from tests.e2e.server import Server, ServerDirs

ROOT = Path(__file__).resolve().parents[2]
ARROW = "application/vnd.apache.arrow.stream"
CHUNK = 2_000


def demo_events(n: int) -> pa.Table:
    """`n` demo events over the five days before yesterday, in the columns a producer sends."""
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=6)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    table = generate_events(n, seed=7, start=start, days=5, users=14, workbooks=24, events_per_session=30)
    return table.drop_columns(
        [c for c in ("received_at", "batch_id", "attributes") if c in table.column_names]
    )


def seed(base: str, table: pa.Table) -> None:
    """Post `table` as Arrow IPC streams of CHUNK events; every batch must be stored whole."""
    with httpx.Client(base_url=base, timeout=120) as http:
        for offset in range(0, table.num_rows, CHUNK):
            sink = pa.BufferOutputStream()
            part = table.slice(offset, CHUNK)
            with pa.ipc.new_stream(sink, part.schema) as writer:
                writer.write_table(part)
            resp = http.post(
                "/api/events", content=sink.getvalue().to_pybytes(), headers={"Content-Type": ARROW}
            )
            assert resp.status_code == 200, resp.text


def busiest_cell(table: pa.Table) -> dict[str, str]:
    """The (workbook, sheet, cell) changed most often: the history worth showing."""
    keys = ["workbook_name", "sheet_name", "cell_address"]
    cells = pl.from_arrow(table.select(keys))
    assert isinstance(cells, pl.DataFrame)
    counts = cells.drop_nulls().group_by(keys).len().sort("len", descending=True)
    return {k: str(counts[k][0]) for k in keys}


def shoot(out: Path, events: int, width: int) -> None:
    """Serve, seed, load `/`, wait for the chart and tables, show a cell's history, save the whole page."""
    table = demo_events(events)
    with tempfile.TemporaryDirectory(prefix="govtrack-shot-") as tmp:
        dirs = ServerDirs(Path(tmp))
        server = Server(dirs, dirs.parquet_url)
        try:
            server.wait_ready()
            seed(server.base, table)
            with chromium(width=width, height=1000) as driver:
                driver.get(f"{server.base}/")
                wait_for(driver, "return document.body.dataset.ready === 'true'")
                wait_for(
                    driver, "return document.querySelectorAll('#tail-table tbody tr[data-event-id]').length"
                )
                cell_form = driver.find_element(By.ID, "cell-form")
                for name, value in busiest_cell(table).items():
                    cell_form.find_element(By.NAME, name).send_keys(value)
                driver.find_element(By.ID, "cell-search").click()
                wait_for(
                    driver, "return document.getElementById('cell-history-table').dataset.state === 'ready'"
                )
                driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
                wait_for(driver, "return window.scrollY === 0")
                shot = driver.execute_cdp_cmd(
                    "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
                )
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(base64.b64decode(shot["data"]))
                errors = console_entries(driver)
                assert not errors, errors
        finally:
            server.stop()
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def main() -> None:
    """Command line: `--out`, `--events`, `--width`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--events", type=int, default=4_000)
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    shoot(args.out, args.events, args.width)


if __name__ == "__main__":
    main()
