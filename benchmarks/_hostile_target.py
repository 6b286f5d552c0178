"""One measured `govtrack serve` subprocess for the hostile-payload benchmark.

`Target` runs the server from a given source tree (`python -P` with `PYTHONPATH=<source>`, so the
checkout the benchmark lives in is not on the path), on its own temporary store. `Target.measured`
wraps the hostile request: meanwhile one thread asks `/live` every 20 ms (the longest answer is how
long the event loop was blocked) and another samples the server's VmRSS every 50 ms. VmHWM cannot
be reset, which is why each payload gets a fresh process (restarted after any seeding).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from benchmarks._server import rss_mb
from tests.e2e.server import Server, ServerDirs

__all__ = ["Measure", "Target", "source_module_file"]

LIVE_EVERY_S: Final = 0.02
RSS_EVERY_S: Final = 0.05
STORE_OPEN_TIMEOUT_S: Final = 180.0


def _status_mb(pid: int, key: str) -> float | None:
    """A `Vm*` line of /proc/<pid>/status in MiB (None once the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return None


#: `-P`: the working directory (this checkout) must not shadow `PYTHONPATH=<source>` on sys.path.
SERVE: Final = [sys.executable, "-P", "-m", "api.cli", "serve"]


def source_module_file(source: Path) -> str:
    """Where the server started from `source` imports `api` from (proves which code was measured)."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", "import api; print(api.__file__)"],
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _error_code(resp: httpx.Response) -> str | None:
    """The contract's `error.code` of a refusal (None for a success or another body)."""
    if resp.status_code < 400:
        return None
    try:
        return str(resp.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Measure:
    """What one hostile request did: its answer and what the server went through meanwhile.

    `live_open`: a /live request was still unanswered when the payload ended, or timed out (its wait
    so far is counted in `live_max_ms`, a lower bound then).
    """

    status: int | str = "not sent"
    error_code: str | None = None
    seconds: float = 0.0
    live_max_ms: float = 0.0
    live_open: bool = False
    live_polls: int = 0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0


@dataclass
class _Probes:
    """The /live poller and the VmRSS sampler, running while a payload does."""

    base: str
    pid: int
    live_timeout_s: float
    longest: float = 0.0
    polls: int = 0
    unanswered: bool = False
    rss_peak: float = 0.0
    _inflight: float | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _first: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start both threads; returns once /live has answered once (the poller is really running)."""
        client = httpx.Client(base_url=self.base, timeout=self.live_timeout_s)  # built here: it takes ~50 ms
        for target, args in ((self._poll_live, (client,)), (self._sample_rss, ())):
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._first.wait(timeout=10)

    def stop(self, into: Measure) -> None:
        """Stop both threads; a /live still waiting after 2 s counts with its wait so far."""
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=2)
        with self._lock:
            into.live_open = self.unanswered or self._inflight is not None
            if self._inflight is not None:
                self.longest = max(self.longest, time.perf_counter() - self._inflight)
            into.live_max_ms = round(self.longest * 1000, 1)
            into.live_polls = self.polls
        into.rss_peak_mb = round(self.rss_peak, 1)

    def _poll_live(self, client: httpx.Client) -> None:
        with client:
            while not self._done.is_set():
                start = time.perf_counter()
                with self._lock:
                    self._inflight = start
                unanswered = False
                try:
                    client.get("/live")
                except httpx.TimeoutException:
                    unanswered = True  # hung past the timeout: the wait so far is a lower bound
                except httpx.HTTPError:
                    pass  # the server died: the wait is what counts
                with self._lock:
                    self._inflight = None
                    self.unanswered |= unanswered
                    self.longest = max(self.longest, time.perf_counter() - start)
                    self.polls += 1
                self._first.set()
                self._done.wait(LIVE_EVERY_S)

    def _sample_rss(self) -> None:
        while not self._done.is_set():
            try:
                rss = rss_mb(self.pid)
            except OSError:
                return  # the process is gone
            self.rss_peak = max(self.rss_peak, rss)
            self._done.wait(RSS_EVERY_S)


class Target:
    """A server on `kind` (parquet | clickhouse) under `root`, running the code of `source`."""

    def __init__(self, kind: str, root: Path, source: Path, timeout_s: float) -> None:
        self.kind = kind
        self.root = root
        self.source = source
        self.timeout_s = timeout_s
        self.dirs = ServerDirs(root)
        self.measures: list[Measure] = []
        self.server = self._start()
        self.http = httpx.Client(base_url=self.server.base, timeout=timeout_s)

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def _start(self) -> Server:
        url = self.dirs.url_for("parquet" if self.kind == "parquet" else "chdb")
        server = Server(self.dirs, url, command=SERVE, PYTHONPATH=str(self.source))
        server.wait_ready()
        deadline = time.monotonic() + STORE_OPEN_TIMEOUT_S  # /ready means "ingest accepted"
        while httpx.get(f"{server.base}/api/stats", timeout=60).status_code == 503:
            if time.monotonic() > deadline:
                raise RuntimeError(f"store did not open:\n{server.log_tail()}")
            time.sleep(0.2)
        return server

    def restart(self) -> None:
        """A fresh process on the same data (after seeding: VmHWM starts over)."""
        self.http.close()
        self.server.terminate()
        self.server = self._start()
        self.http = httpx.Client(base_url=self.server.base, timeout=self.timeout_s)

    def close(self) -> None:
        self.http.close()
        self.server.stop()

    def hwm_mb(self) -> float | None:
        """VmHWM: the process's peak resident memory since it started."""
        return _status_mb(self.pid, "VmHWM")

    def exit_code(self) -> int | None:
        return self.server.proc.poll()

    @contextmanager
    def measured(self) -> Iterator[Measure]:
        """Probe /live and VmRSS while the block runs; the block sets `status`."""
        measure = Measure(rss_before_mb=round(_status_mb(self.pid, "VmRSS") or 0.0, 1))
        probes = _Probes(self.server.base, self.pid, self.timeout_s + 30)  # outlives the payload's
        probes.start()
        start = time.perf_counter()
        try:
            yield measure
        finally:
            measure.seconds = round(time.perf_counter() - start, 2)
            probes.stop(measure)
            self.measures.append(measure)

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One measured request; a timeout or a lost connection is the recorded status."""
        with self.measured() as measure:
            try:
                resp = self.http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                measure.status = "timeout"
                return None
            except httpx.TransportError as exc:
                measure.status = f"no answer ({type(exc).__name__})"
                return None
            measure.status = resp.status_code
            measure.error_code = _error_code(resp)
            return resp

    def stream(self, path: str, **kwargs: Any) -> dict[str, float | int]:
        """One measured streamed GET: time to the answer's head and to its first body byte, its size."""
        facts: dict[str, float | int] = {}
        with self.measured() as measure:
            start = time.perf_counter()
            try:
                with self.http.stream("GET", path, **kwargs) as resp:
                    measure.status = resp.status_code
                    if resp.status_code >= 400:
                        resp.read()
                        measure.error_code = _error_code(resp)
                    facts["ttfb_ms"] = round((time.perf_counter() - start) * 1000, 1)
                    facts["bytes"] = facts["lines"] = 0
                    for chunk in resp.iter_raw():
                        facts.setdefault("first_chunk_ms", round((time.perf_counter() - start) * 1000, 1))
                        facts["bytes"] += len(chunk)
                        facts["lines"] += chunk.count(b"\n")
            except httpx.TimeoutException:
                measure.status = "timeout"
            except httpx.TransportError as exc:
                measure.status = f"no answer ({type(exc).__name__})"
        return facts

    def post_json(self, body: bytes, path: str = "/api/events") -> httpx.Response:
        """An unmeasured JSON post (seeding); it must succeed."""
        resp = self.http.post(path, content=body, headers={"Content-Type": "application/json"})
        if resp.status_code != 200:
            raise RuntimeError(f"seeding {path}: {resp.status_code} {resp.text[:300]}")
        return resp
