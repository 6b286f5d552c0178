"""Decoder benchmark: decode + validate + Arrow build of realistic 1000-event bodies, on one core.

Run on demand: `python -m benchmarks.bench_decode`. Writes benchmarks/results/decode.txt.
Target (performance notes): about 2.5 ms per 1000 events or better.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from api.ingest.decoding import decode_batch

RESULTS = Path(__file__).parent / "results" / "decode.txt"
NOW = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
TYPES = ["CellChange"] * 12 + ["FormulaChange", "RangeChange", "WorkbookSave", "SheetAdd", "MacroRun"]
VALUES: list[Any] = [None, "", 0.25, -3.75, 24, False, "Grüße aus München", "Q3 forecast", 2025, "👍🏽 ok"]


def realistic_event(rng: random.Random, index: int, *, with_id: bool = True) -> dict[str, Any]:
    """One add-in event in PascalCase, like tests/fixtures/addin_batch_pascal.json."""
    moment = NOW - dt.timedelta(days=3, seconds=rng.randrange(86_400), microseconds=rng.randrange(10**6))
    offset = rng.choice(["Z", "+02:00", "-05:00", ""])
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + str(rng.randrange(10)) + offset
    event: dict[str, Any] = {
        "EventId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "Timestamp": text,
        "EventType": rng.choice(TYPES),
        "UserName": f"CORP\\user{rng.randrange(50)}",
        "MachineName": f"LAPTOP-{rng.randrange(40):04d}",
        "SessionId": str(uuid.UUID(int=rng.getrandbits(128) // 1000, version=4)),
        "WorkbookName": f"\\\\fs01\\finance\\Budget 2025\\Headcount v{rng.randrange(9)}.xlsm",
        "SheetName": rng.choice(["P&L (EUR)", "Übersicht", "Sheet1", "数据"]),
        "CellAddress": f"{rng.choice('ABCDEFGH')}{rng.randrange(1, 500)}",
        "OldValue": rng.choice(VALUES),
        "NewValue": rng.choice(VALUES),
        "Formula": rng.choice([None, '=IFERROR(XLOOKUP(A2,Übersicht!A:A,Übersicht!C:C),"")', "=SUM(B2:B9)"]),
        "CorrelationId": rng.choice([None, str(uuid.UUID(int=rng.getrandbits(128), version=4))]),
        "AddinVersion": "3.4.1.0",
        "ExcelBuild": "16.0.18025.20104",
    }
    if index % 7 == 0:
        event["Culture"] = "de-DE"
    if index % 11 == 0:
        event["Tags"] = ["q3", "draft"]
    if not with_id:
        del event["EventId"]
    return event


def body(n: int, kind: Literal["json", "ndjson"], *, with_id: bool = True, ascii_only: bool = False) -> bytes:
    """A compact body of `n` realistic events (ascii_only: System.Text.Json-style escapes of non-ASCII)."""
    rng = random.Random(7)
    events = [realistic_event(rng, i, with_id=with_id) for i in range(n)]
    if kind == "ndjson":
        return "\n".join(
            json.dumps(e, ensure_ascii=ascii_only, separators=(",", ":")) for e in events
        ).encode()
    text = json.dumps({"events": events, "batch_id": "bench"}, ensure_ascii=ascii_only, separators=(",", ":"))
    return text.encode()


def measure(run: Callable[[], object], repeat: int = 300) -> tuple[float, float, float]:
    """(wall median, CPU median, CPU minimum) seconds per call.

    CPU time (`time.process_time`) leaves out the time this process waits for a core on a shared
    machine; its minimum is the figure least disturbed by other load.
    """
    run()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), min(cpus)


#: stdlib `json.loads` / msgspec decode of the 1000-event body on the machine of
#: shared/design/performance-notes.md.
REFERENCE_STDLIB_MS = 1.79
REFERENCE_MSGSPEC_MS = 0.58

Scenario = tuple[str, bytes, Literal["json", "ndjson"]]


def scenarios() -> list[Scenario]:
    """The measured bodies: 1000 realistic events each."""
    plain = body(1000, "json")
    return [
        ("json, PascalCase, with ids", plain, "json"),
        ("json, \\u-escaped (add-in encoder)", body(1000, "json", ascii_only=True), "json"),
        ("ndjson", body(1000, "ndjson"), "ndjson"),
        ("json, no ids (all derived)", body(1000, "json", with_id=False), "json"),
    ]


def main() -> None:
    """Measure each scenario next to plain decoders of the same body, and write the results file."""
    plain = body(1000, "json")
    decoder = msgspec.json.Decoder()
    _, std_cpu, std_min = measure(lambda: json.loads(plain))
    _, ms_cpu, ms_min = measure(lambda: decoder.decode(plain))
    scale = REFERENCE_MSGSPEC_MS / (ms_min * 1000)
    lines = [
        f"decode_batch, 1000 events per body, 300 runs each ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
        f"CPU time (process_time); reference decoders of the same body: json.loads {std_cpu * 1000:.2f} ms median,"
        f" {std_min * 1000:.2f} min; msgspec {ms_cpu * 1000:.2f} median, {ms_min * 1000:.2f} min",
        f"scaled = min x {scale:.2f} (msgspec {REFERENCE_MSGSPEC_MS} ms on the perf-notes machine /"
        f" here; json.loads ratio {REFERENCE_STDLIB_MS / (std_min * 1000):.2f})",
        f"{'scenario':38s} {'body':>9s}  {'wall med':>8s}  {'cpu med':>8s}  {'cpu min':>8s}  {'scaled':>8s}"
        f"  {'x msgspec':>9s}  {'events/s (scaled)':>17s}",
    ]
    for name, data, kind in scenarios():

        def run(data: bytes = data, kind: Literal["json", "ndjson"] = kind) -> object:
            return decode_batch(data, kind, max_events=10_000, header_batch_id=None, received_at=NOW, now=NOW)

        wall, cpu, fastest = measure(run)
        lines.append(
            f"{name:38s} {len(data) / 1024:5.0f} KiB  {wall * 1000:5.2f} ms  {cpu * 1000:5.2f} ms"
            f"  {fastest * 1000:5.2f} ms  {fastest * 1000 * scale:5.2f} ms  {fastest / ms_min:8.1f}x"
            f"  {1000 / (fastest * scale):14,.0f}/s"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
