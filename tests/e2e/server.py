"""Run `python -m api.cli serve` as a real subprocess, for crash, shutdown and outage tests.

Why a subprocess: only a separate process can be killed with SIGKILL, sent SIGTERM, or restarted on
the same directories, which is what the durability promises are about. The server's log goes to a
file, never a pipe, so a chatty server can never block on a full pipe buffer during a load run.

Also here: a small load generator (threads posting unique-id batches, recording which batches were
acknowledged) and the read-back through the HTTP API used to check "every acknowledged event
present exactly once".
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

__all__ = [
    "ACKED",
    "Batch",
    "Load",
    "Server",
    "ServerDirs",
    "assert_exactly_once",
    "free_port",
    "make_batch",
    "make_varied_batch",
    "oracle_rows",
    "read_all_ids",
]

ACKED: Final = frozenset({200, 202, 207})
READY_TIMEOUT_S: Final = 120.0
_BASE_TS: Final = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerDirs:
    """The directories a server runs on; a restart reuses them."""

    root: Path

    @property
    def parquet_url(self) -> str:
        return f"parquet://{self.root / 'parquet'}"

    @property
    def chdb_url(self) -> str:
        return f"chdb://{self.root / 'chdb'}"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def url_for(self, kind: str) -> str:
        return self.parquet_url if kind == "parquet" else self.chdb_url


class Server:
    """One `govtrack serve` process on a free loopback port; log in `<root>/server-<n>.log`."""

    _runs = 0

    def __init__(
        self, dirs: ServerDirs, store_url: str, *, command: list[str] | None = None, **env: str
    ) -> None:
        Server._runs += 1
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = dirs.root / f"server-{Server._runs}.log"
        dirs.root.mkdir(parents=True, exist_ok=True)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GOVTRACK_")}
        environ.update(
            GOVTRACK_STORE_URL=store_url,
            GOVTRACK_SPOOL_DIR=str(dirs.spool),
            GOVTRACK_ARCHIVE_URL=str(dirs.archive),
            GOVTRACK_LOG_LEVEL="info",
            **env,
        )
        cmd = [
            *(command or [sys.executable, "-m", "api.cli", "serve"]),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=environ, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2]
            )

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's log, for assertion messages."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S, probe: str = "/ready") -> None:
        """Block until `probe` answers 200 (for /ready: with batches going to the store itself).

        /ready is 200 as soon as the spool takes batches, while the store may still be opening
        (under load, seconds): a batch posted then is queued (202), not stored. Tests that post
        and expect "stored" need the store open, so /ready must also say `writes_to: store`.
        Fail with the log when the process dies or never gets there.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                answer = httpx.get(f"{self.base}{probe}", timeout=2)
                if answer.status_code == 200 and (
                    probe != "/ready" or answer.json().get("writes_to") == "store"
                ):
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server not ready (exit {self.proc.poll()}):\n{self.log_tail()}")
            time.sleep(0.05)

    def kill9(self) -> None:
        """SIGKILL: no handler, no flush, no lifespan shutdown."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait for the exit; returns the exit code (SIGKILLs and fails after `timeout_s`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server ignored SIGTERM for {timeout_s}s:\n{self.log_tail()}") from None

    def stop(self) -> None:
        """Cleanup for `finally`: whatever state the process is in, it is gone afterwards."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def _health_checks(self) -> dict[str, Any]:
        checks: dict[str, Any] = httpx.get(f"{self.base}/health", timeout=30).json().get("checks", {})
        return checks

    def spool_depth(self) -> int:
        """The spool depth /health reports (0 when it does not report one)."""
        return int(self._health_checks().get("spool", {}).get("depth", 0) or 0)

    def wait_spool_drained(self, timeout_s: float = 60.0) -> None:
        """Wait until the store is open and the spool has been replayed into it.

        /ready answers 200 as soon as the spool takes batches, while the store may still be
        opening (reads answer 503 store_unavailable until it is): an empty spool alone is not enough.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            checks = self._health_checks()
            depth = int(checks.get("spool", {}).get("depth", 0) or 0)
            if checks.get("store", {}).get("open", True) and depth == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"store not open or spool not drained after {timeout_s}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)


@dataclass
class Batch:
    """One posted batch: its event ids, the HTTP status it got (None: no answer), and its body."""

    ids: list[str]
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def acked(self) -> bool:
        return self.status in ACKED


def make_batch(n: int, tag: str) -> tuple[Batch, dict[str, Any]]:
    """`n` valid events with fresh uuid4 ids, user `tag`; the Batch record and the JSON body."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    events = [
        {
            "EventId": event_id,
            "Timestamp": (_BASE_TS + dt.timedelta(milliseconds=i)).isoformat(),
            "EventType": "CellChange",
            "UserName": tag,
            "WorkbookName": "load.xlsx",
            "SheetName": "S",
            "CellAddress": f"A{i + 1}",
            "NewValue": i,
        }
        for i, event_id in enumerate(ids)
    ]
    return Batch(ids, body={"events": events}), {"events": events}


EVENT_TYPES: Final = {
    "CellChange": "cell_change",
    "FormulaChange": "formula_change",
    "SheetAdd": "sheet_add",
    "WorkbookSave": "workbook_save",
    "SessionStart": "session_start",
}


def make_varied_batch(n: int, tag: str) -> tuple[Batch, dict[str, Any]]:
    """`n` add-in events over twelve hours: five users, seven sessions, four workbooks or none.

    Statistics over them exercise every group and window; the fields derive from the random id.
    """
    ids = [str(uuid.uuid4()) for _ in range(n)]
    events = []
    for i, event_id in enumerate(ids):
        k = int(event_id[:8], 16)  # random, but a function of the id
        events.append(
            {
                "EventId": event_id,
                "Timestamp": (_BASE_TS + dt.timedelta(microseconds=k % (12 * 3_600_000_000))).isoformat(),
                "EventType": list(EVENT_TYPES)[k % 5],
                "UserName": f"CORP\\u{k % 5}",
                "MachineName": None if k % 6 == 0 else f"PC-{k % 3}",
                "SessionId": None if k % 9 == 0 else f"s-{k % 7}",
                "WorkbookName": None if k % 4 == 0 else f"book{k % 4}.xlsx",
                "SheetName": "S",
                "CellAddress": f"A{i + 1}",
                "NewValue": i,
                "Tag": tag,
            }
        )
    return Batch(ids, body={"events": events}), {"events": events}


def oracle_rows(batches: list[Batch]) -> list[dict[str, Any]]:
    """The stored form of every event of `batches` (the fields tests.contract.oracle reads)."""
    return [
        {
            "event_id": e["EventId"],
            "timestamp": dt.datetime.fromisoformat(e["Timestamp"]),
            "event_type": EVENT_TYPES[e["EventType"]],
            "user_name": e["UserName"],
            "machine_name": e["MachineName"],
            "session_id": e["SessionId"],
            "workbook_name": e["WorkbookName"],
        }
        for b in batches
        for e in b.body["events"]
    ]


@dataclass
class Load:
    """Threads posting small unique-id batches to `base` until stopped; records every answer."""

    base: str
    tag: str
    threads: int = 3
    batch_size: int = 100
    factory: Callable[[int, str], tuple[Batch, dict[str, Any]]] = make_batch
    batches: list[Batch] = field(default_factory=list)
    statuses: Counter[int | None] = field(default_factory=Counter)
    first_ack: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=120)

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            seq = 0
            while not self._stop.is_set():
                seq += 1
                batch, body = self.factory(self.batch_size, f"{self.tag}-{worker}-{seq}")
                with self._lock:
                    self.batches.append(batch)
                try:
                    batch.status = client.post("/api/events", json=body).status_code
                except httpx.HTTPError:
                    batch.status = None  # the connection died: not acknowledged
                with self._lock:
                    self.statuses[batch.status] += 1
                if batch.acked:
                    self.first_ack.set()
                elif batch.status is None:
                    time.sleep(0.05)  # the server is gone; do not spin

    def acked_ids(self) -> set[str]:
        return {i for b in self.batches if b.acked for i in b.ids}

    def sent_ids(self) -> set[str]:
        return {i for b in self.batches for i in b.ids}


def read_all_ids(base: str) -> list[str]:
    """Every stored event id via `GET /api/events`, following `next_cursor` (duplicates kept)."""
    out: list[str] = []
    cursor: str | None = None
    with httpx.Client(base_url=base, timeout=120) as client:
        while True:
            params: dict[str, Any] = {"limit": 10_000, "order": "asc"}
            if cursor:
                params["cursor"] = cursor
            resp = client.get("/api/events", params=params)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            out.extend(e["event_id"] for e in body["events"])
            cursor = body["next_cursor"]
            if cursor is None:
                return out


def stats_total(base: str) -> int:
    """`total_events` of `GET /api/stats` (counts each id once by contract)."""
    resp = httpx.get(f"{base}/api/stats", timeout=120)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["total_events"])


def assert_exactly_once(base: str, acked: set[str], sent: set[str]) -> int:
    """Every acknowledged id stored once, nothing stored twice, nothing never sent; returns the count.

    Unacknowledged ids (the answer was lost to the crash) may or may not be present, but only once.
    The stats total must agree with the listing, since both count each id once.
    """
    stored = read_all_ids(base)
    counts = Counter(stored)
    duplicated = sorted(i for i, c in counts.items() if c > 1)
    missing = sorted(acked - counts.keys())
    unknown = sorted(counts.keys() - sent)
    assert not duplicated, f"{len(duplicated)} ids stored more than once, e.g. {duplicated[:3]}"
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged ids lost, e.g. {missing[:3]}"
    assert not unknown, f"{len(unknown)} ids never sent, e.g. {unknown[:3]}"
    assert stats_total(base) == len(stored)
    return len(stored)
