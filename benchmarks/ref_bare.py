"""Reference server 1, "the bare pipeline": what Python reaches on this machine for the same job.

FastAPI + msgspec Structs of plain fields + column-wise Arrow + one Parquet write per 20,000 rows,
answered before the write: no validation, no dedup, no durability. govtrack's ingest goal is a
ratio to this server, measured in the same run by benchmarks.bench_ingest (issue 9). Not part of
govtrack: a yardstick, kept small on purpose.

Run: `python -m benchmarks.ref_bare --port 8001 --out /tmp/bare`.
"""

from __future__ import annotations

import argparse
import queue
import threading
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import uvicorn
from fastapi import FastAPI, Request, Response

FLUSH_ROWS = 20_000
Value = str | int | float | bool | None


class Event(msgspec.Struct, rename="pascal"):
    """The add-in's PascalCase event, every field as it comes."""

    event_id: str | None = None
    timestamp: str | None = None
    event_type: str | None = None
    user_name: str | None = None
    machine_name: str | None = None
    session_id: str | None = None
    workbook_name: str | None = None
    sheet_name: str | None = None
    cell_address: str | None = None
    old_value: Value = None
    new_value: Value = None
    formula: str | None = None
    correlation_id: str | None = None


class Batch(msgspec.Struct):
    """The JSON envelope."""

    events: list[Event]


FIELDS = [f for f in Event.__struct_fields__]
TEXT = {"old_value", "new_value"}


def columns(events: list[Event]) -> pa.Table:
    """One Arrow column per field, built from lists (values as text)."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        values = [getattr(e, name) for e in events]
        if name in TEXT:
            values = [None if v is None else str(v) for v in values]
        data[name] = pa.array(values, pa.string())
    return pa.table(data)


def create_app(out: Path) -> FastAPI:
    """The app: POST /api/events buffers the batch and answers; a thread writes Parquet files."""
    app = FastAPI()
    decoder = msgspec.json.Decoder(Batch)
    pending: list[pa.Table] = []
    rows = [0]
    files: queue.Queue[list[pa.Table]] = queue.Queue()
    out.mkdir(parents=True, exist_ok=True)

    def writer() -> None:
        n = 0
        while True:
            tables = files.get()
            n += 1
            pq.write_table(pa.concat_tables(tables), out / f"part-{n:06d}.parquet", compression="zstd")

    threading.Thread(target=writer, daemon=True).start()

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/events")
    async def ingest(request: Request) -> Response:
        batch = decoder.decode(await request.body())
        pending.append(columns(batch.events))
        rows[0] += len(batch.events)
        if rows[0] >= FLUSH_ROWS:
            files.put(pending.copy())
            pending.clear()
            rows[0] = 0
        body = msgspec.json.encode({"status": "stored", "accepted": len(batch.events)})
        return Response(body, media_type="application/json")

    return app


def main() -> None:
    """Serve on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.out), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
