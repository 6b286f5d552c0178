"""POST /api/events: decode, validate, group-commit, answer with per-index errors.

JSON/NDJSON bodies up to `inline_decode_max_bytes` (default 512 KiB: about 1,000 realistic events,
~5 ms of decoding on this machine) are decoded on the event loop: measured with 8 concurrent
clients posting 1000-event batches against a no-op store, decoding in worker threads halved
throughput (84k vs 149k events/s: the threads and the loop fight over the GIL). The cap bounds what
a hostile body can cost the loop: the decoder is linear in the body (no regex or key x event work,
the cyclic GC paused while msgspec decodes), and the costliest 512 KiB measured (small nested
arrays, 4,300-digit integers) took ~5-8x a realistic 1000-event batch, 40-70 ms of CPU on this
loaded 2-core machine; lower the setting to trade batch throughput for a tighter bound. Larger
bodies, and every Arrow body (whose decoded size is only known from its metadata), go to a worker
thread, so one request never stalls every other for long.
The store is only ever reached through the group-commit writer,
which sits in front of the resilient appender: each request is answered by the outcome of the
append that carried its rows (200/207 stored, 202 queued in the spool).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import StateDep
from api.errors import ApiError
from api.ingest.body import content_kind, read_body
from api.ingest.decoding import DecodedBatch, EventError, decode_batch
from api.logging import get_logger
from api.openapi import errors, ingest_body, ok
from api.settings import Settings
from api.state import AppState
from storage import tracing
from storage.resilient import Outcome
from storage.spool import SpoolFullError
from storage.writer import WriterOverloadedError, WriterStoppedError

__all__ = ["IngestResponse", "router"]

log = get_logger("govtrack.ingest")
router = APIRouter(tags=["ingest"])


class IngestError(BaseModel):
    """One rejected event: its index in the batch, its id when known, the field and why."""

    index: int
    event_id: str | None
    field: str | None
    message: str


class IngestResponse(BaseModel):
    """The 200 / 207 / 202 answer."""

    status: Literal["stored", "queued"]
    accepted: int
    rejected: int
    errors: list[IngestError]
    batch_id: str
    processing_time_ms: float


def _error_dicts(errors: Sequence[EventError]) -> list[dict[str, Any]]:
    return [
        {"index": e.index, "event_id": e.event_id, "field": e.field, "message": e.message} for e in errors
    ]


async def _decode(
    request: Request, body: bytes, kind: Literal["json", "ndjson", "arrow"], settings: Settings
) -> DecodedBatch:
    now = dt.datetime.now(dt.UTC)

    def run() -> DecodedBatch:
        return decode_batch(
            body,
            kind,
            max_events=settings.max_batch_events,
            header_batch_id=request.headers.get("idempotency-key"),
            received_at=now,
            now=now,
            max_extra_keys=settings.max_batch_extra_keys,
            max_arrow_bytes=settings.max_arrow_decoded_bytes,
        )

    if kind != "arrow" and len(body) <= settings.inline_decode_max_bytes:
        return run()
    return await asyncio.to_thread(run)


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


async def _store(state: AppState, decoded: DecodedBatch) -> Outcome:
    """Append through the writer: `stored`, or `queued` when the batch went to the spool (202).

    Refusals the client should retry later map to 429/503 with Retry-After; nothing of the batch
    is acknowledged then. A terminal store error propagates (500 `store_error`).
    """
    settings = state.settings
    try:
        return await state.writer.submit(decoded.table)
    except WriterOverloadedError as exc:
        raise ApiError(
            429,
            "overloaded",
            f"too many events waiting to be written: {exc}",
            headers=_retry_after(settings.overload_retry_after_s),
        ) from exc
    except WriterStoppedError as exc:
        raise _shutting_down(settings.retry_after_s) from exc
    except SpoolFullError as exc:
        raise ApiError(
            503,
            "spool_full",
            "the event store is unavailable and the local spool is full",
            headers=_retry_after(settings.retry_after_s),
        ) from exc
    except OSError as exc:
        log.error("spool_write_failed", error=f"{type(exc).__name__}: {exc}")
        raise ApiError(
            503,
            "spool_unavailable",
            "the event store is unavailable and the local spool cannot be written",
            headers=_retry_after(settings.retry_after_s),
        ) from exc


def _shutting_down(retry_after_s: int) -> ApiError:
    return ApiError(503, "shutting_down", "the service is shutting down", headers=_retry_after(retry_after_s))


@router.post(
    "/api/events",
    response_model=IngestResponse,
    responses=ok(IngestResponse, "every event stored")
    | ok(IngestResponse, "some events invalid; the valid ones stored", status=207)
    | ok(IngestResponse, "store unavailable; the batch is held in the spool", status=202)
    | errors(
        400,
        413,
        415,
        422,
        429,
        503,
        s400="the body is not valid JSON / NDJSON / Arrow",
        s413="too many events, bytes, decoded Arrow bytes or distinct extra field names",
        s422="no valid event in the batch (per-index details)",
        s503="spool full, spool unwritable or shutting down; `Retry-After` set",
    ),
    summary="Ingest a batch of audit events (JSON, NDJSON or Arrow IPC stream)",
    openapi_extra=ingest_body(),
)
async def ingest_events(request: Request, state: StateDep) -> JSONResponse:
    """Store the valid events of a batch; report the invalid ones by index.

    At most `max_inflight_requests` ingest requests are worked on at once (bodies in memory);
    one more is answered 429 before its body is read.
    """
    started = time.perf_counter()
    settings, metrics = state.settings, state.metrics
    if state.draining:
        metrics.record_batch("refused", accepted=0, rejected=0)
        raise _shutting_down(settings.retry_after_s)
    if state.ingest_in_flight >= settings.max_inflight_requests:
        metrics.record_batch("refused", accepted=0, rejected=0)
        raise ApiError(
            429,
            "overloaded",
            "too many ingest requests in progress",
            headers=_retry_after(settings.overload_retry_after_s),
        )
    state.ingest_in_flight += 1
    try:
        return await _ingest(request, state, started)
    except ApiError as exc:
        if exc.code != "invalid_events":  # 422 is recorded as `rejected` where it is raised
            metrics.record_batch("refused", accepted=0, rejected=0, seconds=time.perf_counter() - started)
        raise
    finally:
        state.ingest_in_flight -= 1


async def _ingest(request: Request, state: AppState, started: float) -> JSONResponse:
    settings, metrics = state.settings, state.metrics
    kind = content_kind(request.headers.get("content-type", ""))
    body = await read_body(request, max_bytes=settings.max_body_bytes)
    read_ms = (time.perf_counter() - started) * 1000
    with tracing.span("decode", content_kind=kind, body_bytes=len(body)) as span:
        decoded = await _decode(request, body, kind, settings)
        span.set_attributes({"govtrack.events": decoded.total, "govtrack.rejected": len(decoded.errors)})
    decode_ms = (time.perf_counter() - started) * 1000 - read_ms
    structlog.contextvars.bind_contextvars(batch_id=decoded.batch_id)
    errors = _error_dicts(decoded.errors)
    accepted = decoded.table.num_rows
    if accepted == 0:
        log.info("batch_rejected", kind=kind, total=decoded.total, rejected=len(errors))
        metrics.record_batch(
            "rejected", accepted=0, rejected=len(errors), seconds=time.perf_counter() - started
        )
        message = (
            f"{len(errors)} of {decoded.total} events are invalid" if decoded.total else "batch has no events"
        )
        raise ApiError(422, "invalid_events", message, details=errors)
    outcome = await _store(state, decoded)
    result = outcome.result
    total_ms = (time.perf_counter() - started) * 1000
    log.info(
        "batch_ingested",
        kind=kind,
        bytes=len(body),
        total=decoded.total,
        accepted=accepted,
        rejected=len(errors),
        status=outcome.status,
        queue_reason=outcome.reason,
        stored=result.stored if result else None,
        duplicates=result.duplicates if result else None,
        read_ms=round(read_ms, 3),
        decode_ms=round(decode_ms, 3),
        commit_ms=round(total_ms - read_ms - decode_ms, 3),
        total_ms=round(total_ms, 3),
    )
    status = 202 if outcome.queued else (207 if errors else 200)
    label = "queued" if outcome.queued else ("partial" if errors else "stored")
    metrics.record_batch(label, accepted=accepted, rejected=len(errors), seconds=total_ms / 1000)
    body_out = IngestResponse(
        status=outcome.status,
        accepted=accepted,
        rejected=len(errors),
        errors=[IngestError(**e) for e in errors],
        batch_id=decoded.batch_id,
        processing_time_ms=round(total_ms, 3),
    )
    return JSONResponse(body_out.model_dump(), status_code=status)
