"""Prometheus metrics of one app, in its own registry, and the `/metrics` rendering.

Each app gets its own `CollectorRegistry` (never the process-global one), so tests that build many
apps don't collide and two apps in one process don't mix their figures. All names carry the
`govtrack_` prefix (`govtrack_events_accepted_total`, ...).

What the counters mean (the writer/ingest route feed them through the `record_*` methods):
    events_accepted_total   events acknowledged to a client (200, 207 or 202), stored or spooled
    events_queued_total     the part of those that went to the spool (202) instead of the store
    events_rejected_total   events refused as invalid (per-event errors of 207/422)
    batches_total{status}   requests by outcome: stored | partial | queued | rejected | refused
    store_errors_total{kind} store failures by kind (e.g. transient | terminal | invalid_query)
Histograms: ingest_latency_seconds (whole ingest request), query_latency_seconds{endpoint},
store_append_seconds (one group-committed append). Gauges: spool_depth_files, spool_bytes,
breaker_state (0 closed, 1 half-open, 2 open), store_up (1/0), writer_pending_rows. Plus HTTP request counts and
durations by route template from `MetricsMiddleware`.

Gauges that describe current state are best refreshed at scrape time: register a callable with
`Metrics.add_scrape_hook` (e.g. one that reads the spool's size) and it runs before each render.

The store's inside (storage.internals: ClickHouse parts, merges and mutations; Parquet files per
month, compaction backlog and last merge; spill bytes) is exported as `govtrack_<name>` gauges,
read at scrape time by `store_internals_hook`: at most INTERNALS_TIMEOUT_S per scrape, one read
in flight at a time, and never an error: while the store is down, not open yet or slow to answer,
those gauges are absent from the scrape (and the change is logged once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.internals import INTERNALS, internals_of

__all__ = [
    "BATCH_STATUSES",
    "BREAKER_STATES",
    "INTERNALS_TIMEOUT_S",
    "METRICS_STATE_ATTR",
    "Metrics",
    "MetricsMiddleware",
    "StoreInternalsProbe",
    "install_metrics",
    "metrics_of",
    "metrics_response",
    "router",
    "store_internals_hook",
]

NAMESPACE: Final = "govtrack"
METRICS_STATE_ATTR: Final = "govtrack_metrics"
BATCH_STATUSES: Final = frozenset({"stored", "partial", "queued", "rejected", "refused"})
BREAKER_STATES: Final[dict[str, int]] = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
_UNMATCHED_ROUTE: Final = "<unmatched>"
# Seconds. Ingest and appends are milliseconds when healthy; the tail shows retries and stalls.
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: A scrape waits at most this long for the store's internals (system tables), then leaves them out.
INTERNALS_TIMEOUT_S: Final = 2.0

log = structlog.get_logger("govtrack.metrics")

ScrapeHook = Callable[["Metrics"], None]


class Metrics:
    """Every metric of one app, and small verbs to record them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._scrape_hooks: list[ScrapeHook] = []
        self._build_ingest()
        self._build_store()
        self._build_http()

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def _histogram(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
        return Histogram(
            name, doc, labels, namespace=NAMESPACE, registry=self.registry, buckets=_LATENCY_BUCKETS
        )

    def _gauge(self, name: str, doc: str) -> Gauge:
        return Gauge(name, doc, namespace=NAMESPACE, registry=self.registry)

    def _build_ingest(self) -> None:
        self.events_accepted = self._counter("events_accepted", "Events acknowledged (stored or spooled).")
        self.events_rejected = self._counter("events_rejected", "Events refused as invalid.")
        self.events_queued = self._counter("events_queued", "Acknowledged events held in the spool.")
        self.batches = self._counter("batches", "Ingest requests by outcome.", ("status",))
        self.ingest_latency = self._histogram("ingest_latency_seconds", "Ingest request latency.")
        self.query_latency = self._histogram(
            "query_latency_seconds", "Read/statistics query latency.", ("endpoint",)
        )

    def _build_store(self) -> None:
        self.store_errors = self._counter("store_errors", "Event store failures by kind.", ("kind",))
        self.store_append = self._histogram("store_append_seconds", "Duration of one store append.")
        self.spool_depth_files = self._gauge("spool_depth_files", "Batches waiting in the spool.")
        self.spool_bytes = self._gauge("spool_bytes", "Bytes waiting in the spool.")
        self.breaker_state = self._gauge(
            "breaker_state", "Store circuit breaker: 0 closed, 1 half-open, 2 open."
        )
        self.store_up = self._gauge(
            "store_up", "1 when the event store is open and its breaker closed, else 0."
        )
        self.writer_pending_rows = self._gauge(
            "writer_pending_rows", "Rows waiting for (or in) a group-committed append."
        )
        self._internals = _InternalsCollector()
        self.registry.register(self._internals)

    def _build_http(self) -> None:
        self.http_requests = self._counter(
            "http_requests", "HTTP requests by route template.", ("method", "route", "status")
        )
        self.http_duration = self._histogram(
            "http_request_duration_seconds", "HTTP request duration.", ("method", "route")
        )

    # ------------------------------------------------------------------ ingest

    def record_batch(
        self, status: str, *, accepted: int, rejected: int, seconds: float | None = None
    ) -> None:
        """One ingest request's outcome.

        Args:
            status: stored (200), partial (207), queued (202), rejected (422: nothing valid) or
                refused (413/415/429/503 and other whole-request refusals).
            accepted: events acknowledged; for `queued` they also count as queued.
            rejected: events refused as invalid.
            seconds: the request's latency, if measured.
        """
        if status not in BATCH_STATUSES:
            raise ValueError(f"unknown batch status {status!r}; known: {sorted(BATCH_STATUSES)}")
        self.batches.labels(status=status).inc()
        self.events_accepted.inc(accepted)
        self.events_rejected.inc(rejected)
        if status == "queued":
            self.events_queued.inc(accepted)
        if seconds is not None:
            self.ingest_latency.observe(seconds)

    # ------------------------------------------------------------------ store and spool

    def record_store_append(self, seconds: float) -> None:
        """One append that reached the store (successful or not), by duration."""
        self.store_append.observe(seconds)

    def record_store_error(self, kind: str) -> None:
        """A store failure; keep `kind` to a small fixed set (transient, terminal, invalid_query)."""
        self.store_errors.labels(kind=kind).inc()

    def set_spool(self, *, files: int, size_bytes: int) -> None:
        """The spool's current depth."""
        self.spool_depth_files.set(files)
        self.spool_bytes.set(size_bytes)

    def set_breaker(self, state: str | int) -> None:
        """The circuit breaker's state: "closed" | "half_open" | "open" or 0 | 1 | 2."""
        value = BREAKER_STATES[state.lower()] if isinstance(state, str) else int(state)
        if value not in (0, 1, 2):
            raise ValueError(f"breaker state must be 0, 1 or 2, not {value}")
        self.breaker_state.set(value)

    def set_store_up(self, up: bool) -> None:
        """Whether the store is reachable."""
        self.store_up.set(1 if up else 0)

    def set_writer_pending(self, rows: int) -> None:
        """Rows the writer holds (backpressure answers 429 past `max_pending_rows`)."""
        self.writer_pending_rows.set(rows)

    def set_store_internals(self, values: Mapping[str, float] | None) -> None:
        """The store's inside (storage.internals names); None or {} leaves those gauges absent."""
        self._internals.values = dict(values or {})

    # ------------------------------------------------------------------ reads

    def record_query(self, endpoint: str, seconds: float) -> None:
        """One read/statistics query; `endpoint` is a fixed name (events, stats, timeseries, ...)."""
        self.query_latency.labels(endpoint=endpoint).observe(seconds)

    @contextmanager
    def time_query(self, endpoint: str) -> Iterator[None]:
        """`with metrics.time_query("stats"): ...` records the block's duration."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record_query(endpoint, time.perf_counter() - started)

    # ------------------------------------------------------------------ http

    def record_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request by route template (never the raw path: unbounded label values)."""
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(seconds)

    # ------------------------------------------------------------------ rendering

    def add_scrape_hook(self, hook: ScrapeHook) -> None:
        """Run `hook(metrics)` before every render, to refresh state gauges."""
        self._scrape_hooks.append(hook)

    def render(self) -> bytes:
        """The Prometheus text exposition; a failing hook is logged, never fails the scrape."""
        for hook in self._scrape_hooks:
            try:
                hook(self)
            except Exception as exc:
                log.warning("metrics_hook_failed", hook=getattr(hook, "__name__", repr(hook)), error=str(exc))
        return generate_latest(self.registry)


class _InternalsCollector:
    """`govtrack_<name>` gauges for the store internals last read; a name not reported is absent.

    A collector rather than fixed Gauges: an engine reports only its own names, and a store that
    did not answer must show nothing rather than a stale or a zero figure.
    """

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def describe(self) -> Iterable[Metric]:
        """Every possible family (the registry checks names against other metrics with it)."""
        return [GaugeMetricFamily(f"{NAMESPACE}_{name}", doc) for name, doc in INTERNALS.items()]

    def collect(self) -> Iterable[Metric]:
        """The families of the names last reported (unknown names are left out)."""
        values = self.values
        return [
            GaugeMetricFamily(f"{NAMESPACE}_{name}", doc, value=values[name])
            for name, doc in INTERNALS.items()
            if name in values
        ]


class StoreInternalsProbe:
    """Reads a store's internals for a scrape, bounded in time and never raising.

    The read runs in a daemon thread and is waited for at most `timeout_s`: a store call cannot be
    interrupted, so a slow one is left to finish on its own and, until it has, later scrapes do not
    start another (no threads pile up on a stuck engine). Failures are logged when they start and
    when they end, not at every scrape.
    """

    def __init__(self, store: object, timeout_s: float = INTERNALS_TIMEOUT_S) -> None:
        self._store = store
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._failing = False

    def read(self) -> dict[str, float] | None:
        """The internals now, or None when the store failed, is busy or did not answer in time."""
        box: list[dict[str, float] | BaseException] = []
        with self._lock:
            if self._running is not None and self._running.is_alive():
                self._failed("a previous read is still running")
                return None
            thread = threading.Thread(target=self._run, args=(box,), name="govtrack-internals", daemon=True)
            self._running = thread
            thread.start()
        thread.join(self.timeout_s)
        if not box:
            self._failed(f"no answer within {self.timeout_s} s")
            return None
        result = box[0]
        if isinstance(result, BaseException):
            self._failed(f"{type(result).__name__}: {result}")
            return None
        if self._failing:
            self._failing = False
            log.info("store_internals_restored")
        return result

    def _run(self, box: list[dict[str, float] | BaseException]) -> None:
        try:
            box.append(internals_of(self._store))
        except Exception as exc:  # reported by read(), never raised into a scrape
            box.append(exc)

    def _failed(self, why: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning("store_internals_unavailable", error=why)


def store_internals_hook(store: object, timeout_s: float = INTERNALS_TIMEOUT_S) -> ScrapeHook:
    """Scrape hook exporting `store`'s internals (through its wrappers) as gauges."""
    probe = StoreInternalsProbe(store, timeout_s)

    def refresh_store_internals(metrics: Metrics) -> None:
        metrics.set_store_internals(probe.read())

    return refresh_store_internals


# ---------------------------------------------------------------------- app wiring


def install_metrics(app: Any, metrics: Metrics) -> None:
    """Attach `metrics` to an app (FastAPI/Starlette), so routes and middleware find it."""
    setattr(app.state, METRICS_STATE_ATTR, metrics)


def metrics_of(app: Any) -> Metrics:
    """The app's Metrics, created and attached on first use (one registry per app)."""
    metrics = getattr(app.state, METRICS_STATE_ATTR, None)
    if not isinstance(metrics, Metrics):
        metrics = Metrics()
        install_metrics(app, metrics)
    return metrics


def metrics_response(metrics: Metrics) -> Response:
    """The `/metrics` response in the Prometheus text format."""
    return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)


router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def get_metrics(request: Request) -> Response:
    """Prometheus text format. A plain `def`: scrape hooks may touch the disk (spool size)."""
    return metrics_response(metrics_of(request.app))


class MetricsMiddleware:
    """Pure ASGI middleware counting HTTP requests and their durations by route template.

    Pure ASGI so streamed bodies pass untouched; the duration runs until the app has sent the
    whole response. Requests that matched no route are counted under `<unmatched>`.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time one HTTP request; other scope types pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            metrics = self.metrics or metrics_of(scope["app"])
            route = getattr(scope.get("route"), "path", None) or _UNMATCHED_ROUTE
            metrics.record_http(str(scope.get("method", "")), route, status, time.perf_counter() - started)
