"""`POST /api/holds`, `GET /api/holds`, `DELETE /api/holds/{hold_id}`: legal holds, for admins.

A hold covers [from, to), optionally only one user's or one workbook's events, in both tiers:
retention skips every archived month holding a covered event, and on an S3 bucket with Object Lock
the archived files it overlaps carry an S3 legal hold until no hold covers them
(storage.archive.holds). Holds are records in the archive location, so they survive restarts and
every replica sees them. Releasing keeps the record, with `released_at`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep
from api.errors import ApiError
from api.filters import parse_timestamp
from api.openapi import errors, ok
from api.routes.archive import tiered_of
from storage.archive.holds import Hold, HoldNotFoundError
from storage.archive.tiers import TieredStore

__all__ = ["router"]

router = APIRouter(tags=["holds"])


class HoldRequest(BaseModel):
    """A new hold: a time range, optionally narrowed to one user or one workbook, and why."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: str = Field(alias="from", max_length=64, description="first instant held (ISO-8601)")
    end: str = Field(alias="to", max_length=64, description="first instant no longer held (ISO-8601)")
    user_name: str | None = Field(default=None, min_length=1, max_length=256)
    workbook_name: str | None = Field(default=None, min_length=1, max_length=1024)
    reason: str = Field(min_length=1, max_length=4096)


class HoldAnswer(BaseModel):
    """A hold as recorded."""

    hold_id: str
    from_: str = Field(alias="from")
    to: str
    user_name: str | None
    workbook_name: str | None
    reason: str
    created_at: str
    released_at: str | None


class HoldList(BaseModel):
    """The holds in force (with `?all=true`, released ones too)."""

    holds: list[HoldAnswer]


def _place(store: TieredStore, body: HoldRequest) -> Hold:
    try:
        start, end = parse_timestamp(body.start, "from"), parse_timestamp(body.end, "to")
    except ValueError as exc:
        raise ApiError(400, "invalid_query", str(exc)) from exc
    if start >= end:
        raise ApiError(400, "invalid_query", "`from` must be before `to`")
    hold = store.holds.create(start, end, body.user_name, body.workbook_name, body.reason)
    store.holds.sync_legal_holds([f for f in store.reader.files(start, end)])
    return hold


def _release(store: TieredStore, hold_id: str) -> Hold:
    hold = store.holds.release(hold_id)
    store.holds.sync_legal_holds(store.reader.files(hold.start, hold.end))
    return hold


@router.post(
    "/api/holds",
    status_code=201,
    summary="Place a legal hold: nothing it covers is deleted, by retention or otherwise",
    response_model=None,
    responses=ok(HoldAnswer, "the hold, with its hold_id", status=201) | errors(400),
)
async def place_hold(body: HoldRequest, state: StateDep) -> dict[str, Any]:
    """Recorded durably before the answer; S3 legal holds are set on the files it overlaps."""
    store = tiered_of(state)
    hold = await run_in_threadpool(_place, store, body)
    return hold.to_dict()


@router.get(
    "/api/holds", summary="The legal holds in force", response_model=None, responses=ok(HoldList, "holds")
)
async def list_holds(
    state: StateDep, every: Annotated[bool, Query(alias="all", description="released holds too")] = False
) -> dict[str, Any]:
    """`?all=true` lists released holds too."""
    store = tiered_of(state)
    holds = await run_in_threadpool(store.holds.all if every else store.holds.active)
    return {"holds": [h.to_dict() for h in holds]}


@router.delete(
    "/api/holds/{hold_id}",
    summary="Release a legal hold (its record stays, with released_at)",
    response_model=None,
    responses=ok(HoldAnswer, "the released hold") | errors(404, s404="no active hold with that id"),
)
async def release_hold(hold_id: str, state: StateDep) -> dict[str, Any]:
    """S3 legal holds are cleared on files no other active hold overlaps."""
    store = tiered_of(state)
    if len(hold_id) > 64 or not hold_id.isalnum():
        raise ApiError(404, "not_found", f"no active hold {hold_id!r}")
    try:
        hold = await run_in_threadpool(_release, store, hold_id)
    except HoldNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return hold.to_dict()
