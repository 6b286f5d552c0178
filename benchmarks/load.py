"""A lean HTTP/1.1 load generator: keep-alive connections posting pre-built bodies.

The client shares the machine's two cores with the server, so it does as little as possible per
request: one template body per run, made unique per request by a bytes replace of a marker inside
every event_id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import statistics
import time
from dataclasses import dataclass, field

__all__ = ["LoadResult", "make_template", "run_load"]

MARKER = b"@@@@@@@@@@@@"  # 12 chars: the last group of each event_id, replaced by a batch counter
EVENT_TYPES = ("CellChange", "FormulaChange", "WorkbookSave", "RangeChange", "SheetAdd", "Calculation")


def make_template(events: int = 1000, seed: int = 7) -> bytes:
    """One add-in style JSON batch (PascalCase, 7-digit fractions) whose ids end in MARKER."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    items = []
    for i in range(events):
        ts = now - dt.timedelta(seconds=rng.randrange(0, 30 * 86400), microseconds=rng.randrange(10**6))
        user = f"CORP\\user{rng.randrange(200):03d}"
        items.append(
            {
                "EventId": f"{rng.getrandbits(32):08x}-{i:04x}-4{rng.getrandbits(12):03x}-8{rng.getrandbits(12):03x}-"
                + MARKER.decode(),
                "Timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
                "EventType": rng.choice(EVENT_TYPES),
                "UserName": user,
                "MachineName": f"LAPTOP-{rng.randrange(500):04d}",
                "SessionId": f"{rng.getrandbits(128):032x}",
                "WorkbookName": f"\\\\fs01\\finance\\Budget {rng.randrange(40)}.xlsx",
                "SheetName": rng.choice(("Sheet1", "P&L (EUR)", "Übersicht", "数据")),
                "CellAddress": f"{chr(65 + rng.randrange(20))}{rng.randrange(1, 500)}",
                "OldValue": rng.choice((None, "12.5", "", "Draft")),
                "NewValue": rng.choice((3.75, "Final", True, 42)),
                "Formula": rng.choice((None, "=SUM(A1:A10)", '=IFERROR(XLOOKUP(A2,B:B,C:C),"")')),
                "CorrelationId": None,
                "AddinVersion": "3.4.1.0",
                "ExcelBuild": "16.0.18025.20104",
            }
        )
    return json.dumps({"events": items}, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class LoadResult:
    """What one load run measured."""

    clients: int
    seconds: float
    requests: int = 0
    events: int = 0
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        """Events acknowledged per second over the measured window."""
        return self.events / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile in ms (q in 0..100)."""
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[min(98, max(0, int(q) - 1))]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _client(
    port: int,
    template: bytes,
    events: int,
    counter: list[int],
    stop: float,
    measure_from: float,
    out: LoadResult,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(template)}\r\n\r\n"
    ).encode()
    try:
        while (start := time.perf_counter()) < stop:
            counter[0] += 1
            body = template.replace(MARKER, b"%012x" % counter[0])
            writer.write(head + body)
            await writer.drain()
            status = await _read_response(reader)
            done = time.perf_counter()
            if start >= measure_from:
                out.requests += 1
                out.statuses[status] = out.statuses.get(status, 0) + 1
                if status == 200:
                    out.events += events
                    out.latencies_ms.append((done - start) * 1000)
                else:
                    out.failures += 1
    finally:
        writer.close()


async def _run(
    port: int, clients: int, seconds: float, warmup: float, template: bytes, events: int
) -> LoadResult:
    out = LoadResult(clients=clients, seconds=seconds)
    begin = time.perf_counter()
    counter = [int(begin * 1000) % (1 << 40)]
    tasks = [
        _client(port, template, events, counter, begin + warmup + seconds, begin + warmup, out)
        for _ in range(clients)
    ]
    await asyncio.gather(*tasks)
    return out


def run_load(
    port: int, clients: int, seconds: float, *, warmup: float = 2.0, events: int = 1000
) -> LoadResult:
    """Post `events`-event batches from `clients` connections for `seconds` after a warm-up."""
    template = make_template(events)
    return asyncio.run(_run(port, clients, seconds, warmup, template, events))
