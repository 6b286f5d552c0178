"""The govtrack app over a store that discards everything: the ceiling the real stores are compared to."""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import pyarrow as pa
import uvicorn

from api.app import create_app
from api.settings import Settings
from storage.base import (
    AppendResult,
    Bucket,
    Cursor,
    EventFilter,
    ExportResult,
    GroupBy,
    HealthCheck,
    Page,
    SessionFilter,
    Stats,
)
from storage.schema import empty_events


class NullStore:
    """Accepts every append and forgets it; reads are empty. Only for measuring the HTTP path."""

    name = "noop"

    def open(self) -> None:
        """Nothing to open."""

    def append(self, batch: pa.Table, /) -> AppendResult:
        """Count and discard."""
        return AppendResult(stored=batch.num_rows, duplicates=0)

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """No events."""
        return empty_events()

    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """No events, so no next page."""
        return None

    def get_event(self, event_id: str, /) -> pa.Table:
        """No events."""
        return empty_events()

    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """No events."""
        return empty_events()

    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """No events."""
        return empty_events()

    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """All zero."""
        empty = pa.table({"key": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
        return Stats(0, 0, 0, 0, None, None, empty, empty, empty)

    def timeseries(
        self, flt: EventFilter, bucket: Bucket, group_by: GroupBy | None, max_points: int = 0, /
    ) -> pa.Table:
        """No buckets."""
        return pa.table(
            {
                "ts": pa.array([], pa.timestamp("us", tz="UTC")),
                "group": pa.array([], pa.string()),
                "count": pa.array([], pa.int64()),
            }
        )

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """No sessions."""
        return pa.table({"session_id": pa.array([], pa.string())})

    def session(self, session_id: str, /) -> pa.Table:
        """No sessions."""
        return pa.table({"session_id": pa.array([], pa.string())})

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        """Nothing to export."""
        return ExportResult(destination=destination, manifest={"rows": 0, "files": []})

    def cell_state(
        self, workbook_name: str, sheet_name: str, cell_address: str, at: dt.datetime, /
    ) -> pa.Table:
        """No events."""
        return empty_events()

    def workbook_state(
        self, workbook_name: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, /
    ) -> pa.Table:
        """No events."""
        return empty_events()

    def session_numbers(self, session_id: str, /) -> pa.Table:
        """No sessions."""
        return pa.table({"session_seq": pa.array([], pa.int64())})

    def session_seq_events(self, session_id: str, seqs: list[int], /) -> pa.Table:
        """No events."""
        return empty_events()

    def health(self) -> HealthCheck:
        """Always fine."""
        return HealthCheck(ok=True, detail="noop")

    def close(self) -> None:
        """Nothing to close."""


def main() -> None:
    """Serve the app over a NullStore on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="govtrack-noop-"))
    settings = Settings(store_url=f"parquet://{work / 'unused'}", spool_dir=work / "spool")
    app = create_app(settings, store=NullStore())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
