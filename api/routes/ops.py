"""Operations endpoints for orchestrators and operators: /live, /ready, /health.

/live only says the process answers. /ready says ingest can be accepted: the store takes writes
(open, breaker closed, nothing spooled ahead) or the spool has room; it is 503 only when nothing
can be accepted (shutting down, or store unusable and spool full/unwritable). /health reports
every component and answers 200 with the status inside (a report for people and dashboards):
`degraded` while the store is down or not open, the breaker is not closed, or the spool holds
batches; `unhealthy` when nothing can be accepted. /live and /ready are open; /health needs `read`.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.auth import require_scope
from api.deps import StateDep
from api.errors import ApiError
from api.openapi import errors
from api.state import AppState
from storage.base import EventStore, HealthCheck
from storage.breaker import CLOSED
from storage.internals import internals_of

__all__ = ["VERSION", "router"]


def _package_version() -> str:
    try:
        return version("govtrack")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0+unknown"


VERSION: Final = _package_version()

router = APIRouter(tags=["operations"])

HealthStatus = Literal["healthy", "degraded", "unhealthy"]


class HealthBody(BaseModel):
    """The /health answer."""

    status: HealthStatus
    version: str
    uptime_s: float
    checks: dict[str, dict[str, Any]]


@router.get("/live")
async def live() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "alive"}


#: The spool "has room" while at least this much of its cap is free (about one small batch).
SPOOL_MIN_FREE_BYTES: Final = 64 * 1024
#: A store health probe slower than this counts as "down" (a hung server must not hang /health).
HEALTH_PROBE_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Acceptance:
    """Whether ingest can be accepted, and where a batch would go."""

    store: bool
    spool: bool
    draining: bool

    @property
    def ok(self) -> bool:
        """Something can be accepted."""
        return not self.draining and (self.store or self.spool)


def acceptance(state: AppState) -> Acceptance:
    """Cheap (no store call): store usable by the write path, or spool with room."""
    spool = state.appender.spool
    store_ok = state.deferred.is_open and state.appender.breaker.state == CLOSED and spool.depth == 0
    free = spool.max_bytes - spool.bytes
    room = free >= min(SPOOL_MIN_FREE_BYTES, spool.max_bytes) and _writable(spool.directory)
    return Acceptance(store=store_ok, spool=room, draining=state.draining)


@router.get(
    "/ready", responses=errors(503, s503="cannot accept events (shutting down, or store down and spool full)")
)
async def ready(state: StateDep) -> dict[str, str]:
    """200 when ingest can be accepted, else 503 in the error shape."""
    verdict = acceptance(state)
    if not verdict.ok:
        reason = "shutting down" if verdict.draining else "event store unavailable and spool full"
        raise ApiError(
            503,
            "not_ready",
            f"cannot accept events: {reason}",
            headers={"Retry-After": str(state.settings.retry_after_s)},
        )
    return {"status": "ready", "writes_to": "store" if verdict.store else "spool"}


@router.get("/health", dependencies=[Depends(require_scope("read"))])
async def health(state: StateDep) -> HealthBody:
    """Every component's state (see the module docstring for the status rules)."""
    store_check = await _probe(state)
    snap = state.appender.health_snapshot()
    verdict = acceptance(state)
    spool_dir = state.appender.spool.directory
    checks: dict[str, dict[str, Any]] = {
        "store": {
            "ok": store_check.ok,
            "engine": state.deferred.name,
            "open": state.deferred.is_open,
            **_as_dict(store_check),
            "breaker": snap.breaker.as_dict(),
            "last_error": snap.last_error,
            "last_error_at": snap.last_error_at.isoformat() if snap.last_error_at else None,
        },
        "spool": {
            "ok": verdict.spool,
            **snap.spool.as_dict(),
            "exists": spool_dir.exists(),
            "writable": _writable(spool_dir),
        },
        "archive": _archive_check(state.settings.archive_url),
    }
    status: HealthStatus = "healthy"
    if not verdict.ok:
        status = "unhealthy"
    elif not store_check.ok or snap.degraded:
        status = "degraded"
    return HealthBody(
        status=status,
        version=VERSION,
        uptime_s=round(time.monotonic() - state.started_monotonic, 3),
        checks=checks,
    )


async def _probe(state: AppState) -> HealthCheck:
    """The store's own probe and its internals, bounded in time; an unopened store is not probed."""
    if not state.deferred.is_open:
        return state.deferred.health()
    probe = asyncio.ensure_future(asyncio.to_thread(_health_and_internals, state.deferred))
    done, _ = await asyncio.wait({probe}, timeout=HEALTH_PROBE_TIMEOUT_S)
    if not done:
        return HealthCheck(ok=False, detail=f"health probe did not answer within {HEALTH_PROBE_TIMEOUT_S} s")
    return probe.result()


def _health_and_internals(store: EventStore) -> HealthCheck:
    """The store's probe, with its internals (storage.internals) in `data` when it answered."""
    check = store.health()
    if not check.ok:
        return check
    data: dict[str, object] = dict(check.data)
    try:
        data["internals"] = internals_of(store)
    except Exception as exc:  # /health reports; the store's own probe already said it answers
        data["internals"], data["internals_error"] = {}, f"{type(exc).__name__}: {exc}"
    return HealthCheck(ok=check.ok, detail=check.detail, data=data)


def _as_dict(check: HealthCheck) -> dict[str, Any]:
    return {"detail": check.detail, **check.data}


def _writable(directory: Path) -> bool:
    """The directory exists (or can be created on first use) and is writable."""
    probe = directory if directory.exists() else _nearest_existing_parent(directory)
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _nearest_existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return path


def _archive_check(archive_url: str) -> dict[str, Any]:
    """Where the archive tier is configured; nothing is archived yet, so it is only reported."""
    scheme = urlsplit(archive_url).scheme.lower()
    kind = "s3" if scheme == "s3" else "local"
    return {"ok": True, "location": archive_url, "kind": kind}
