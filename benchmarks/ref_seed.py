"""Reference server 2, "the seed's design": pydantic models and one insert per request.

The design govtrack replaces: FastAPI + a pydantic model per event + one insert per request into
the store (DuckDB table, or a MergeTree through clickhouse-connect on the embedded engine). The
issue-9 goal is govtrack at 5x this on the same store, measured in the same run by
benchmarks.bench_ingest. Not part of govtrack; kept small on purpose.

Run: `python -m benchmarks.ref_seed --port 8002 --store duckdb|chdb --dir /tmp/seed`.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal

Value = str | int | float | bool | None
COLUMNS = (
    "event_id",
    "timestamp",
    "event_type",
    "user_name",
    "machine_name",
    "session_id",
    "workbook_name",
    "sheet_name",
    "cell_address",
    "old_value",
    "new_value",
    "formula",
    "correlation_id",
)


class Event(BaseModel):
    """The add-in's event, validated by pydantic (PascalCase or snake_case names)."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="allow")

    event_id: str | None = None
    timestamp: str
    event_type: str
    user_name: str
    machine_name: str | None = None
    session_id: str | None = None
    workbook_name: str | None = None
    sheet_name: str | None = None
    cell_address: str | None = None
    old_value: Value = None
    new_value: Value = None
    formula: str | None = None
    correlation_id: str | None = None


class Batch(BaseModel):
    """The JSON envelope."""

    events: list[Event]


def _row(e: Event) -> list[Any]:
    values = [getattr(e, c) for c in COLUMNS]
    return [None if v is None else str(v) for v in values]


class DuckDBSink:
    """One INSERT per request into a DuckDB table (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        import duckdb

        path.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(path / "seed.duckdb"))
        self.con.execute(f"CREATE TABLE IF NOT EXISTS events ({', '.join(f'{c} VARCHAR' for c in COLUMNS)})")
        self.lock = threading.Lock()

    def insert(self, rows: list[list[Any]]) -> None:
        """One INSERT of the request's rows (through Arrow: a row-wise executemany is far slower)."""
        batch = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(COLUMNS)})
        with self.lock:
            self.con.register("batch", batch)
            self.con.execute("INSERT INTO events SELECT * FROM batch")
            self.con.unregister("batch")


class ChdbSink:
    """One clickhouse-connect insert per request into a MergeTree on the embedded engine."""

    def __init__(self, path: Path) -> None:
        import clickhouse_connect

        self.client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        cols = ", ".join(f"{c} Nullable(String)" for c in COLUMNS)
        self.client.command(f"CREATE TABLE IF NOT EXISTS events ({cols}) ENGINE = MergeTree ORDER BY tuple()")
        self.lock = threading.Lock()

    def insert(self, rows: list[list[Any]]) -> None:
        """One insert of the request's rows."""
        with self.lock:
            self.client.insert("events", rows, column_names=list(COLUMNS))


def create_app(sink: DuckDBSink | ChdbSink) -> FastAPI:
    """POST /api/events validates with pydantic and inserts, then answers."""
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/events")
    def ingest(batch: Batch) -> dict[str, Any]:
        sink.insert([_row(e) for e in batch.events])
        return {"status": "stored", "accepted": len(batch.events)}

    return app


def main() -> None:
    """Serve on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", choices=("duckdb", "chdb"), required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    sink = DuckDBSink(args.dir) if args.store == "duckdb" else ChdbSink(args.dir)
    uvicorn.run(create_app(sink), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
