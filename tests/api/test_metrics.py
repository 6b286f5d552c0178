"""Metrics: counters move, one registry per app, and /metrics is valid Prometheus text."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics, MetricsMiddleware, install_metrics, metrics_of, router


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_record_batch_moves_the_ingest_counters() -> None:
    metrics = Metrics()
    metrics.record_batch("stored", accepted=10, rejected=0, seconds=0.01)
    metrics.record_batch("partial", accepted=3, rejected=2, seconds=0.02)
    metrics.record_batch("queued", accepted=5, rejected=1)
    metrics.record_batch("rejected", accepted=0, rejected=4)
    assert value(metrics, "govtrack_events_accepted_total") == 18
    assert value(metrics, "govtrack_events_rejected_total") == 7
    assert value(metrics, "govtrack_events_queued_total") == 5
    assert value(metrics, "govtrack_batches_total", status="stored") == 1
    assert value(metrics, "govtrack_batches_total", status="queued") == 1
    assert value(metrics, "govtrack_ingest_latency_seconds_count") == 2
    assert value(metrics, "govtrack_ingest_latency_seconds_sum") == pytest.approx(0.03)


def test_unknown_batch_status_is_a_bug_not_a_new_label() -> None:
    with pytest.raises(ValueError, match="unknown batch status"):
        Metrics().record_batch("ok", accepted=1, rejected=0)


def test_store_and_spool_metrics() -> None:
    metrics = Metrics()
    metrics.record_store_append(0.004)
    metrics.record_store_error("transient")
    metrics.record_store_error("transient")
    metrics.set_spool(files=3, size_bytes=4096)
    metrics.set_store_up(False)
    assert value(metrics, "govtrack_store_append_seconds_count") == 1
    assert value(metrics, "govtrack_store_errors_total", kind="transient") == 2
    assert value(metrics, "govtrack_spool_depth_files") == 3
    assert value(metrics, "govtrack_spool_bytes") == 4096
    assert value(metrics, "govtrack_store_up") == 0


@pytest.mark.parametrize(
    ("state", "expected"), [("closed", 0), ("half_open", 1), ("half-open", 1), ("OPEN", 2), (1, 1)]
)
def test_breaker_state(state: str | int, expected: int) -> None:
    metrics = Metrics()
    metrics.set_breaker(state)
    assert value(metrics, "govtrack_breaker_state") == expected


def test_breaker_state_out_of_range() -> None:
    with pytest.raises(ValueError, match="0, 1 or 2"):
        Metrics().set_breaker(3)


def test_query_latency_by_endpoint() -> None:
    metrics = Metrics()
    with metrics.time_query("stats"):
        pass
    metrics.record_query("events", 0.5)
    assert value(metrics, "govtrack_query_latency_seconds_count", endpoint="stats") == 1
    assert value(metrics, "govtrack_query_latency_seconds_sum", endpoint="events") == 0.5


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.record_batch("stored", accepted=1, rejected=0)
    assert value(first, "govtrack_events_accepted_total") == 1
    assert value(second, "govtrack_events_accepted_total") == 0


def test_render_is_valid_prometheus_text_with_every_metric() -> None:
    metrics = Metrics()
    metrics.record_batch("stored", accepted=2, rejected=0, seconds=0.001)
    metrics.record_store_error("terminal")
    metrics.record_query("events", 0.1)
    found = families(metrics.render().decode())
    expected = {
        "govtrack_events_accepted": "counter",
        "govtrack_events_rejected": "counter",
        "govtrack_events_queued": "counter",
        "govtrack_batches": "counter",
        "govtrack_store_errors": "counter",
        "govtrack_ingest_latency_seconds": "histogram",
        "govtrack_query_latency_seconds": "histogram",
        "govtrack_store_append_seconds": "histogram",
        "govtrack_spool_depth_files": "gauge",
        "govtrack_spool_bytes": "gauge",
        "govtrack_breaker_state": "gauge",
        "govtrack_store_up": "gauge",
        "govtrack_http_requests": "counter",
        "govtrack_http_request_duration_seconds": "histogram",
    }
    assert {name: found[name].type for name in expected} == expected
    accepted = [s for s in found["govtrack_events_accepted"].samples if s.name.endswith("_total")]
    assert [s.value for s in accepted] == [2.0]


def test_scrape_hooks_refresh_gauges_and_a_failing_hook_does_not_fail_the_scrape() -> None:
    metrics = Metrics()

    def spool_size(m: Metrics) -> None:
        m.set_spool(files=7, size_bytes=70)

    def broken(m: Metrics) -> None:
        raise OSError("spool dir vanished")

    metrics.add_scrape_hook(broken)
    metrics.add_scrape_hook(spool_size)
    found = families(metrics.render().decode())
    assert found["govtrack_spool_depth_files"].samples[0].value == 7


def make_app() -> FastAPI:
    app = FastAPI()
    install_metrics(app, Metrics())
    app.add_middleware(MetricsMiddleware)
    app.include_router(router)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    return app


def test_metrics_endpoint_and_http_middleware() -> None:
    app = make_app()
    client = TestClient(app)
    for item_id in (1, 2, 3):
        assert client.get(f"/items/{item_id}").status_code == 200
    assert client.get("/nowhere").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    found = families(response.text)
    samples = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in found["govtrack_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert samples == {("/items/{item_id}", "200"): 3, ("<unmatched>", "404"): 1}
    assert metrics_of(app) is metrics_of(app)


def test_apps_do_not_share_figures() -> None:
    first, second = make_app(), make_app()
    TestClient(first).get("/items/1")
    assert (
        value(
            metrics_of(first),
            "govtrack_http_requests_total",
            method="GET",
            route="/items/{item_id}",
            status="200",
        )
        == 1
    )
    assert (
        value(
            metrics_of(second),
            "govtrack_http_requests_total",
            method="GET",
            route="/items/{item_id}",
            status="200",
        )
        == 0
    )


def test_metrics_of_creates_one_per_app_when_not_installed() -> None:
    app = FastAPI()
    assert metrics_of(app) is metrics_of(app)
    assert metrics_of(app) is not metrics_of(FastAPI())
