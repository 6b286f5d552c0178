"""Traces: a request span with decode, group commit and store append below it; off unless asked.

One ingest request gives its request span (FastAPI's, tagged with the request id) and the spans
below it carry the request id and the event counts.

Spans are collected by the SDK's InMemorySpanExporter behind a global SDK TracerProvider, which
the app adopts as an embedding program's provider (api/tracing.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api.app import create_app
from api.settings import Settings
from api.tracing import exporter_from_env
from storage import tracing
from storage.base import EventStore
from storage.tracing import TracedStore
from tests.faults import FaultyStore

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@cache
def exporter() -> InMemorySpanExporter:
    """The process's one in-memory exporter (a global TracerProvider can be set only once)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    memory = exporter()
    memory.clear()
    yield memory
    tracing.use(None)  # no later test in this process records spans by accident
    memory.clear()


def settings_for(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        store_url=f"parquet://{tmp_path / 'unused-store'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        **changes,
    )


def batch(n: int, user: str, invalid: int = 0) -> dict[str, Any]:
    events: list[dict[str, Any]] = [
        {
            "timestamp": f"2025-03-10T09:{i // 60:02d}:{i % 60:02d}Z",
            "event_type": "cell_change",
            "user_name": user,
            "workbook_name": "Budget.xlsx",
            "sheet_name": "S",
            "cell_address": f"A{i + 1}",
            "new_value": i,
        }
        for i in range(n)
    ]
    events += [{"timestamp": "not a time", "event_type": "cell_change", "user_name": user}] * invalid
    return {"events": events}


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def only(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = by_name(finished, name)
    assert len(found) == 1, [s.name for s in finished]
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_one_ingest_request_is_traced(store: EventStore, tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with TestClient(create_app(settings_for(tmp_path, tracing=True), store=store)) as client:
        body = json.dumps(batch(40, "CORP\\ana", invalid=2)).encode()
        answer = client.post(
            "/api/events",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Request-ID": "req-trace-1",
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            },
        )
        assert answer.status_code == 207, answer.text
    finished = spans.get_finished_spans()
    request = only(finished, "POST /api/events")
    decode, commit, append = (only(finished, n) for n in ("decode", "group_commit", "store.append"))

    assert request.kind == SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["govtrack.request_id"] == "req-trace-1"
    assert request.attributes["http.response.status_code"] == 207
    assert request.attributes["http.route"] == "/api/events"
    assert {format(s.context.trace_id, "032x") for s in (request, decode, commit, append)} == {TRACE_ID}

    assert parent_id(decode) == request.context.span_id
    assert parent_id(commit) == request.context.span_id
    assert parent_id(append) == commit.context.span_id
    assert dict(decode.attributes or {}) == {
        "govtrack.content_kind": "json",
        "govtrack.body_bytes": len(body),
        "govtrack.events": 42,
        "govtrack.rejected": 2,
        "govtrack.request_id": "req-trace-1",
    }
    assert dict(commit.attributes or {}) == {
        "govtrack.rows": 40,
        "govtrack.requests": 1,
        "govtrack.request_id": "req-trace-1",
    }
    assert dict(append.attributes or {}) == {
        "govtrack.store": store.name,
        "govtrack.rows": 40,
        "govtrack.stored": 40,
        "govtrack.duplicates": 0,
        "govtrack.request_id": "req-trace-1",
    }


def test_reads_are_traced_down_to_the_store(
    store: EventStore, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    with TestClient(create_app(settings_for(tmp_path, tracing=True), store=store)) as client:
        assert client.post("/api/events", json=batch(5, "CORP\\bo")).status_code == 200
        spans.clear()
        assert client.get("/api/stats", headers={"X-Request-ID": "req-read-1"}).status_code == 200
    finished = spans.get_finished_spans()
    request, stats = only(finished, "GET /api/stats"), only(finished, "store.stats")
    assert parent_id(stats) == request.context.span_id
    assert (stats.attributes or {})["govtrack.request_id"] == "req-read-1"


def test_one_commit_serving_two_requests_links_both(
    store: EventStore, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    faulty = FaultyStore(store)
    with TestClient(create_app(settings_for(tmp_path, tracing=True), store=faulty)) as client:
        writer = client.app.state.govtrack.writer  # type: ignore[attr-defined]
        faulty.pause()
        answers: dict[str, int] = {}

        def post(rid: str, n: int) -> None:
            response = client.post("/api/events", json=batch(n, rid), headers={"X-Request-ID": rid})
            answers[rid] = response.status_code

        first = threading.Thread(target=post, args=("req-a", 3))
        first.start()
        assert faulty.entered.wait(30)  # req-a's append is in the store; the next two must queue
        others = [threading.Thread(target=post, args=(rid, n)) for rid, n in (("req-b", 4), ("req-c", 5))]
        for thread in others:
            thread.start()
        deadline = time.monotonic() + 30
        while writer.queued_rows < 9:
            assert time.monotonic() < deadline, "the two requests never queued"
            time.sleep(0.01)
        faulty.resume()
        for thread in (first, *others):
            thread.join(30)
    assert answers == {"req-a": 200, "req-b": 200, "req-c": 200}
    finished = spans.get_finished_spans()
    commits = sorted(by_name(finished, "group_commit"), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {}).get("govtrack.requests") for s in commits] == [1, 2]
    shared = commits[1]
    callers = [str(i) for i in cast(Sequence[str], (shared.attributes or {})["govtrack.request_ids"])]
    assert sorted(callers) == ["req-b", "req-c"]
    requests = {(s.attributes or {})["govtrack.request_id"]: s for s in by_name(finished, "POST /api/events")}
    first_caller, other_caller = callers
    assert parent_id(shared) == requests[first_caller].context.span_id
    assert [link.context.span_id for link in shared.links] == [requests[other_caller].context.span_id]
    appends = sorted(by_name(finished, "store.append"), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["govtrack.rows"] for s in appends] == [3, 9]


def test_off_by_default(store: EventStore, tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with TestClient(create_app(settings_for(tmp_path), store=store)) as client:
        assert client.post("/api/events", json=batch(3, "CORP\\cy")).status_code == 200
        assert not tracing.enabled()
        assert not isinstance(client.app.state.govtrack.deferred.inner, TracedStore)  # type: ignore[attr-defined]
    assert spans.get_finished_spans() == ()


def test_otel_sdk_disabled_wins(
    store: EventStore, tmp_path: Path, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with TestClient(create_app(settings_for(tmp_path, tracing=True), store=store)) as client:
        assert client.post("/api/events", json=batch(3, "CORP\\di")).status_code == 200
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        ({}, HttpExporter),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            HttpExporter,
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, ConsoleSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "none"}, type(None)),
    ],
)
def test_exporter_chosen_by_the_standard_variables(environ: dict[str, str], kind: type) -> None:
    chosen = exporter_from_env(environ)
    assert type(chosen) is kind
    if chosen is not None:
        chosen.shutdown()


@pytest.mark.parametrize(
    "environ", [{"OTEL_TRACES_EXPORTER": "zipkin"}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}]
)
def test_unshipped_exporters_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"govtrack ships|use http/protobuf or grpc"):
        exporter_from_env(environ)
