"""`POST /api/archive`, `GET /api/archive`, `POST /api/archive/verify`: the archive tier, for admins.

Thin: the move, verify and retention live in storage.archive; this maps their outcomes to the
contract. `before` defaults to the month GOVTRACK_ARCHIVE_AFTER_DAYS points at; without that
setting it is required. Another archive or retention run in progress, or a reconcile mismatch
(events arrived for the month while it was being moved), is 409: nothing was dropped.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, StateDep
from api.errors import ApiError
from api.openapi import errors, ok
from api.tiers import cutoff_month, find_tiered
from storage.archive.manifest import month_text, parse_month
from storage.archive.mover import ArchiveBusyError, ArchiveUnsupportedError, ReconcileError, archive_months
from storage.archive.retention import deletion_log
from storage.archive.tiers import TieredStore
from storage.archive.verify import verify_archive
from storage.errors import TransientStoreError

__all__ = ["router", "tiered_of"]

router = APIRouter(tags=["archive"])


class ArchiveRequest(BaseModel):
    """What to move: every hot month before `before` (YYYY-MM), or only say what would move."""

    model_config = ConfigDict(extra="forbid")

    before: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$", description="first month kept hot")
    dry_run: bool = False


class MonthMoved(BaseModel):
    """One month of an archive run."""

    month: str
    rows: int
    files: int
    generation: int | None
    status: str


class ArchiveAnswer(BaseModel):
    """What an archive run moved (or, dry, would move)."""

    before: str
    dry_run: bool
    months: list[MonthMoved]
    rows: int
    files: int


class VerifyAnswer(BaseModel):
    """The verdict of verify: ok only with no problem and at least one file checked."""

    ok: bool
    months: int
    files_checked: int
    rows: int
    problems: list[str]


def tiered_of(state: Any) -> TieredStore:
    """The app's tiered store, once open (503 before, like every store call)."""
    store = find_tiered(state.deferred)
    if store is None:
        raise ApiError(404, "not_found", "this server has no archive tier")
    if not state.deferred.is_open:
        raise TransientStoreError("event store is not open yet")
    return store


def _before(body: ArchiveRequest, archive_after_days: int | None) -> int:
    if body.before is not None:
        try:
            return parse_month(body.before)
        except ValueError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from exc
    if archive_after_days is None:
        raise ApiError(
            400, "invalid_query", "`before` (YYYY-MM) is required: GOVTRACK_ARCHIVE_AFTER_DAYS is not set"
        )
    return cutoff_month(dt.datetime.now(dt.UTC), archive_after_days)


@router.post(
    "/api/archive",
    summary="Move hot months before a month into the archive, verified; or say what would move",
    response_model=None,
    responses=ok(ArchiveAnswer, "the months moved")
    | errors(400, 409, s409="another archive or retention run is in progress, or events arrived meanwhile"),
)
async def run_archive(body: ArchiveRequest, state: StateDep, settings: SettingsDep) -> dict[str, Any]:
    """Months are moved oldest first; each is committed (manifest) before its hot copy is dropped."""
    store = tiered_of(state)
    before = _before(body, settings.archive_after_days)
    try:
        report = await run_in_threadpool(archive_months, store, before, dry_run=body.dry_run)
    except ArchiveBusyError as exc:
        raise ApiError(409, "archive_busy", str(exc)) from exc
    except ReconcileError as exc:
        raise ApiError(409, "archive_mismatch", str(exc)) from exc
    except ArchiveUnsupportedError as exc:
        raise ApiError(409, "archive_unsupported", str(exc)) from exc
    return report.to_dict()


@router.get("/api/archive", summary="The archived months, their generations, and the deletion log")
async def archive_status(state: StateDep) -> dict[str, Any]:
    """Served months (newest manifest of each) and every retention deletion recorded."""
    store = tiered_of(state)
    months = store.reader.months()
    return {
        "archive": store.location.url,
        "months": [
            {
                "month": month_text(m),
                "generation": man.generation,
                "rows": man.rows,
                "files": len(man.files),
                "fingerprint": f"{man.fingerprint:016x}",
            }
            for m, man in sorted(months.items())
        ],
        "deletions": await run_in_threadpool(deletion_log, store),
    }


@router.post(
    "/api/archive/verify",
    summary="Re-read every manifest and file of the archive (or of one month) and check them",
    response_model=None,
    responses=ok(VerifyAnswer, "the verdict and the problems found") | errors(400),
)
async def verify(
    state: StateDep,
    month: Annotated[str | None, Query(max_length=16, description="check this month only (YYYY-MM)")] = None,
) -> dict[str, Any]:
    """`?month=YYYY-MM` checks one month; the answer is 200 either way, `ok` says the verdict."""
    store = tiered_of(state)
    try:
        key = parse_month(month) if month else None
    except ValueError as exc:
        raise ApiError(400, "invalid_query", str(exc)) from exc
    report = await run_in_threadpool(verify_archive, store.location, key)
    return report.to_dict()
