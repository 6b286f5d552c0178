"""Operations endpoints for orchestrators and operators: /live, /ready, /health.

/live only says the process answers. /ready says ingest can be accepted (the store answers its
health probe). /health reports every component; it answers 200 with the status inside, because it
is a report for people and dashboards, while /ready is the probe that gates traffic.
"""

from __future__ import annotations

import asyncio
import os
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import StateDep
from api.errors import ApiError
from storage.base import HealthCheck

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


@router.get("/ready")
async def ready(state: StateDep) -> dict[str, str]:
    """200 when ingest can be accepted, else 503 in the error shape."""
    check = await asyncio.to_thread(state.store.health)
    if not check.ok:
        raise ApiError(
            503,
            "not_ready",
            f"event store is not available: {check.detail}",
            headers={"Retry-After": str(state.settings.retry_after_s)},
        )
    return {"status": "ready"}


@router.get("/health")
async def health(state: StateDep) -> HealthBody:
    """Every component's state; `unhealthy` when the store is down (no spool fallback yet)."""
    store_check = await asyncio.to_thread(state.store.health)
    spool = _spool_check(state.settings.spool_dir)
    checks = {
        "store": {"ok": store_check.ok, "engine": state.store.name, **_as_dict(store_check)},
        "spool": spool,
        "archive": _archive_check(state.settings.archive_url),
    }
    status: HealthStatus = "healthy"
    if not store_check.ok:
        status = "unhealthy"
    elif not spool["ok"]:
        status = "degraded"
    return HealthBody(
        status=status,
        version=VERSION,
        uptime_s=round(time.monotonic() - state.started_monotonic, 3),
        checks=checks,
    )


def _as_dict(check: HealthCheck) -> dict[str, Any]:
    return {"detail": check.detail, **check.data}


def _spool_check(spool_dir: Path) -> dict[str, Any]:
    """The spool directory exists (or can be created on first use) and is writable."""
    probe = spool_dir if spool_dir.exists() else _nearest_existing_parent(spool_dir)
    writable = probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
    return {
        "ok": writable,
        "path": str(spool_dir),
        "exists": spool_dir.exists(),
        "writable": writable,
        "depth": 0,
    }


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
