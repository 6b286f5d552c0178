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

from api.decoding import decode_batch

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


def measure(run: Callable[[], object], repeat: int = 200) -> tuple[float, float]:
    """(median, minimum) seconds per call; the minimum is the figure least disturbed by other load."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


#: stdlib `json.loads` of the 1000-event body on the machine of shared/design/performance-notes.md.
REFERENCE_STDLIB_MS = 1.79


def main() -> None:
    """Measure each scenario next to stdlib json.loads of the same body, and write the results file."""
    plain = body(1000, "json")
    ref_median, ref_min = measure(lambda: json.loads(plain))
    scale = REFERENCE_STDLIB_MS / (ref_min * 1000)
    lines = [
        f"decode_batch, 1000 events per body, 200 runs ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
        f"reference: stdlib json.loads of the same body {ref_median * 1000:.2f} ms median, {ref_min * 1000:.2f} ms min;"
        f" perf-notes machine: {REFERENCE_STDLIB_MS} ms -> scale {scale:.2f}",
        f"{'scenario':38s} {'body':>9s}  {'median':>8s}  {'min':>8s}  {'min scaled':>10s}  {'events/s (min)':>14s}",
    ]
    scenarios: list[tuple[str, bytes, Literal["json", "ndjson"]]] = [
        ("json, PascalCase, with ids", plain, "json"),
        ("json, \\u-escaped (add-in encoder)", body(1000, "json", ascii_only=True), "json"),
        ("ndjson", body(1000, "ndjson"), "ndjson"),
        ("json, no ids (all derived)", body(1000, "json", with_id=False), "json"),
    ]
    for name, data, kind in scenarios:

        def run(data: bytes = data, kind: Literal["json", "ndjson"] = kind) -> object:
            return decode_batch(data, kind, max_events=10_000, header_batch_id=None, received_at=NOW, now=NOW)

        median, fastest = measure(run)
        lines.append(
            f"{name:38s} {len(data) / 1024:5.0f} KiB  {median * 1000:5.2f} ms  {fastest * 1000:5.2f} ms"
            f"  {fastest * 1000 * scale:7.2f} ms  {1000 / fastest:11,.0f}/s"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
