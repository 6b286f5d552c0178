"""Screenshot of the dashboard over demo data, for the README: `python -m tests.e2e.screenshot`.

Starts `govtrack serve` on a temporary Parquet store, posts a few thousand demo events
(analytics.demo) through POST /api/events as an Arrow stream, opens `/` in headless Chromium and
saves the whole page as docs/dashboard.png (or `--out`). On demand only; not part of `make test`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import httpx
import pyarrow as pa

from analytics.demo import generate_events
from tests.e2e.browser import chromium, console_entries, wait_for
from tests.e2e.server import Server, ServerDirs

ROOT = Path(__file__).resolve().parents[2]
ARROW = "application/vnd.apache.arrow.stream"
CHUNK = 2_000


def demo_body(n: int, start: dt.datetime) -> list[bytes]:
    """`n` demo events over five days from `start`, as Arrow IPC stream bodies of CHUNK events."""
    table = generate_events(n, seed=7, start=start, days=5, users=14, workbooks=24, events_per_session=30)
    table = table.drop_columns(
        [c for c in ("received_at", "batch_id", "attributes") if c in table.column_names]
    )
    bodies = []
    for offset in range(0, table.num_rows, CHUNK):
        sink = pa.BufferOutputStream()
        part = table.slice(offset, CHUNK)
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_table(part)
        bodies.append(sink.getvalue().to_pybytes())
    return bodies


def seed(base: str, n: int) -> None:
    """Post the demo events; every batch must be stored whole."""
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=6)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    with httpx.Client(base_url=base, timeout=120) as http:
        for body in demo_body(n, start):
            resp = http.post("/api/events", content=body, headers={"Content-Type": ARROW})
            assert resp.status_code == 200, resp.text


def shoot(out: Path, events: int, width: int) -> None:
    """Serve, seed, load `/`, wait for the chart and the tables, save a full-page PNG."""
    with tempfile.TemporaryDirectory(prefix="govtrack-shot-") as tmp:
        dirs = ServerDirs(Path(tmp))
        server = Server(dirs, dirs.parquet_url)
        try:
            server.wait_ready()
            seed(server.base, events)
            with chromium(width=width, height=1000) as driver:
                driver.get(f"{server.base}/")
                wait_for(driver, "return document.querySelector('#timeseries-chart canvas')")
                wait_for(
                    driver, "return document.querySelectorAll('#events-table tbody tr[data-event-id]').length"
                )
                wait_for(
                    driver, "return document.querySelectorAll('#tail-table tbody tr[data-event-id]').length"
                )
                height = int(driver.execute_script("return document.documentElement.scrollHeight"))
                driver.set_window_size(width, height)
                wait_for(driver, "return new Promise(r => setTimeout(() => r(true), 500))")
                out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(out))
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
