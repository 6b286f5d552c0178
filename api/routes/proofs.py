"""Verifiable history over HTTP: the signed checkpoint, the verifier key, inclusion and consistency proofs.

    GET /api/log/checkpoint             the latest C2SP signed checkpoint (text/plain)
    GET /api/log/key                    the log's verifier key, signed-note vkey form (text/plain)
    GET /api/events/{event_id}/proof    C2SP tlog-proof of the event to the latest checkpoint
    GET /api/log/consistency?from=N&to=M  RFC 6962 consistency proof between two tree sizes

Everything is served from the hot store's log (storage.log.store_log), whichever tier holds the
event: the tree files keep every leaf ever committed. A proof asked for before the background
signer covered its leaf signs a checkpoint first. A deployment without a log (several writers
share a ClickHouse server) answers 501 `log_disabled`; an event stored before the log existed
answers 404 `not_in_log`.
"""

from __future__ import annotations

import uuid
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.deps import StoreDep
from api.errors import ApiError
from api.filters import int_param
from api.openapi import json_errors, text_ok
from api.transparency import LogDisabledError, store_log
from storage.log.proofs import CONSISTENCY_HEADER, TLOG_PROOF_HEADER
from storage.log.store_log import StoreLog

__all__ = ["router"]

router = APIRouter(tags=["verifiable history"])

TEXT: Final = "text/plain; charset=utf-8"
_CATCHING_UP_S: Final = 1
_MAX_SIZE: Final = 10**18 - 1  # what api.filters.int_param reads
_ERRORS: Final = json_errors(501)


def _log(store: object) -> StoreLog:
    try:
        return store_log(store)
    except LogDisabledError as exc:
        raise ApiError(501, "log_disabled", str(exc)) from None


def _text(body: str) -> PlainTextResponse:
    return PlainTextResponse(body, media_type=TEXT)


async def _latest_note(log: StoreLog) -> str:
    latest = await run_in_threadpool(log.latest)
    if latest is not None:
        return latest[1]
    note = await run_in_threadpool(log.checkpoint_now)
    if note is None:
        raise ApiError(
            503,
            "checkpoint_unavailable",
            f"no checkpoint can be signed: {log.last_error or 'the log is not ready'}",
            headers={"Retry-After": str(_CATCHING_UP_S)},
        )
    return note


@router.get(
    "/api/log/checkpoint",
    summary="The latest signed checkpoint of the transparency log (C2SP signed note)",
    response_class=PlainTextResponse,
    responses=text_ok(
        "origin, tree size and base64 RFC 6962 root, then the Ed25519 signature line",
        "govtrack.local/log\n70\n9MfZFy55Xxy+KG4KHzQzikIOAQe+ZM3HCiazqEBQO2w=\n\n— govtrack.local/log RCtD...\n",
    )
    | _ERRORS,
)
async def checkpoint(store: StoreDep) -> PlainTextResponse:
    """The checkpoint every proof refers to; keep one to check consistency later."""
    return _text(await _latest_note(_log(store)))


@router.get(
    "/api/log/key",
    summary="The log's verifier key (signed-note vkey: name+key id+base64 key)",
    response_class=PlainTextResponse,
    responses=text_ok("the verifier key, one line", "govtrack.local/log+442b4361+ATWYfFgBhliq2WMu...\n")
    | _ERRORS,
)
async def key(store: StoreDep) -> PlainTextResponse:
    """Give it to `govtrack verify --key`; obtain it out of band before trusting a checkpoint."""
    return _text(_log(store).log.verifier_key() + "\n")


@router.get(
    "/api/events/{event_id}/proof",
    summary="The event's inclusion proof to the latest checkpoint (C2SP tlog-proof)",
    response_class=PlainTextResponse,
    responses=text_ok(
        "tlog-proof: header, leaf index, sibling hashes leaf to root, blank line, the checkpoint",
        f"{TLOG_PROOF_HEADER}\nindex 41\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\n<checkpoint>",
    )
    | json_errors(
        404, 501, s404="no event with that id (`not_found`), or it was stored before the log (`not_in_log`)"
    ),
)
async def proof(event_id: str, store: StoreDep) -> PlainTextResponse:
    """Check it with `govtrack verify EXPORT --key K --proof FILE --event-id ID`."""
    log = _log(store)
    try:
        canonical = str(uuid.UUID(event_id))
    except ValueError:
        raise ApiError(404, "not_found", "no event with that id") from None
    table = await run_in_threadpool(store.get_event, canonical)
    if table.num_rows == 0:
        raise ApiError(404, "not_found", "no event with that id")
    index = table.column("leaf_index")[0].as_py()
    if index is None:
        raise ApiError(404, "not_in_log", "the event was stored before the transparency log existed")
    try:
        return _text(await run_in_threadpool(log.log.inclusion, index))
    except LookupError:
        pass  # committed after the latest checkpoint: sign one now
    await run_in_threadpool(log.checkpoint_now)
    try:
        return _text(await run_in_threadpool(log.log.inclusion, index))
    except LookupError as exc:
        raise ApiError(
            503, "log_catching_up", str(exc), headers={"Retry-After": str(_CATCHING_UP_S)}
        ) from None


@router.get(
    "/api/log/consistency",
    summary="RFC 6962 consistency proof between two tree sizes",
    response_class=PlainTextResponse,
    responses=text_ok(
        "header, old and new size, the proof's hashes (base64), one per line",
        f"{CONSISTENCY_HEADER}\nold 1000\nnew 2000\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n",
    )
    | json_errors(400, 501),
    openapi_extra={
        "parameters": [
            {
                "name": "from",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": _MAX_SIZE},
                "description": "the older tree size (of a checkpoint you kept)",
            },
            {
                "name": "to",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": _MAX_SIZE},
                "description": "the newer tree size; default: the latest checkpoint's",
            },
        ]
    },
)
async def consistency(request: Request, store: StoreDep) -> PlainTextResponse:
    """`from` <= `to` <= the log's size; `to` defaults to the latest checkpoint's size."""
    log = _log(store)
    params = request.query_params
    try:
        old = int_param(params.get("from"), "from", 0, _MAX_SIZE) if "from" in params else None
        new = int_param(params.get("to"), "to", 0, _MAX_SIZE) if "to" in params else None
    except ValueError as exc:
        raise ApiError(400, "invalid_query", str(exc)) from exc
    if old is None:
        raise ApiError(
            400, "invalid_query", "from is required", details=[{"field": "from", "message": "required"}]
        )
    if new is None:
        latest = await run_in_threadpool(log.latest)
        new = latest[0].size if latest is not None else 0
    size = log.log.size
    if not old <= new <= size:
        raise ApiError(
            400, "invalid_query", f"need 0 <= from <= to <= {size} (the log's size); got from={old}, to={new}"
        )
    return _text(await run_in_threadpool(log.log.consistency, old, new))
