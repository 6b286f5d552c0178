"""Traces for operators: OpenTelemetry spans per request, decode, group commit and store call.

The request span is FastAPI's own (its native OpenTelemetry support: method, route, status,
W3C `traceparent` continued), tagged here with the request id; the others below it come from
storage/tracing.py and copy the id (the group commit: the ids of every request it served).

Off by default. `GOVTRACK_TRACING=true` turns it on; `OTEL_SDK_DISABLED=true` turns it off again
whatever GOVTRACK_TRACING says (the standard kill switch). Everything else is the standard
`OTEL_*` configuration, read when the app is created:

- `OTEL_TRACES_EXPORTER`: `otlp` (default), `console` (stdout, for a look), or `none`;
- `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default,
  port 4318) or `grpc` (port 4317); endpoint, headers, timeout, compression and certificates from
  `OTEL_EXPORTER_OTLP_[TRACES_]*` as the exporters read them;
- `OTEL_SERVICE_NAME` (default `govtrack`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`
  and `OTEL_BSP_*` (batching) as the SDK reads them.

A program that embeds the app and has set an SDK TracerProvider globally keeps it: govtrack's
spans go wherever that provider sends them (this is how the tests collect them in memory).

Cost when off: FastAPI's telemetry is off, no middleware is added, the store is not wrapped,
and the instrumented lines of the ingest path cost 0.4-0.7 us (decode span line) plus 0.8-1.2 us
(group-commit span line, once per commit) plus nothing measurable (the caller's span captured at
submit): 1-2 us per request, against ~5 ms of decoding for 1000 events, over two runs of
`python -m benchmarks.bench_tracing` on this loaded machine (benchmarks/results/tracing.txt).
On, each span costs ~40-55 us here (SDK, no exporter).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from starlette.types import ASGIApp, Receive, Scope, Send

from api.logging import request_id_of
from api.routes.ops import VERSION
from api.settings import Settings
from storage import tracing

__all__ = ["RequestIdOnSpan", "exporter_from_env", "install_tracing", "telemetry_config", "tracing_wanted"]

TRACER_NAME: Final = "govtrack"


def tracing_wanted(settings: Settings, environ: Mapping[str, str] = os.environ) -> bool:
    """GOVTRACK_TRACING=true, unless OTEL_SDK_DISABLED=true."""
    return settings.tracing and environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def exporter_from_env(environ: Mapping[str, str] = os.environ) -> SpanExporter | None:
    """The span exporter OTEL_TRACES_EXPORTER and the OTLP protocol variables name (None: `none`).

    Raises:
        ValueError: an exporter or protocol govtrack does not ship.
    """
    name = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: govtrack ships otlp, console and none")
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"OTLP protocol {protocol!r}: use http/protobuf or grpc")


def _provider() -> TracerProvider:
    """The global SDK provider if the embedding program set one, else a new one from OTEL_*."""
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        return existing
    service = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "govtrack", "service.version": VERSION}
    resource = Resource.create(service)  # OTEL_RESOURCE_ATTRIBUTES merged in by the SDK
    provider = TracerProvider(resource=resource)
    exporter = exporter_from_env()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def telemetry_config(settings: Settings) -> TelemetryConfig:
    """FastAPI's native telemetry: request spans on the chosen provider when wanted, else nothing.

    Also sets storage's tracer (decode, group commit, store spans) or clears it. FastAPI would
    otherwise trace (and meter and log) whenever the embedding program set a global provider;
    govtrack traces only when asked, and keeps its metrics in Prometheus (api/metrics.py).
    """
    quiet: TelemetryConfig = {
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
    }
    if not tracing_wanted(settings):
        tracing.use(None)
        return quiet | {"tracing": False}
    provider = _provider()
    tracing.use(provider.get_tracer(TRACER_NAME, VERSION))
    return quiet | {"tracing": True, "tracer_provider": provider}


def install_tracing(app: FastAPI) -> None:
    """Put the request id on each request span, when tracing.

    Call it before the request-id middleware is added: this one then runs inside it, where the
    id is known, and inside FastAPI's request span.
    """
    if tracing.enabled():
        app.add_middleware(RequestIdOnSpan)


class RequestIdOnSpan:
    """Tags the current (request) span with the request id, for the spans below it to copy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag, then run the request."""
        if scope["type"] == "http":
            trace.get_current_span().set_attribute(tracing.REQUEST_ID, request_id_of(scope))
        await self.app(scope, receive, send)
