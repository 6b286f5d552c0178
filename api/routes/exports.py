"""`POST /api/exports`: matching events to Parquet `year=YYYY/month=MM/` plus manifest.json.

The default destination is a fresh directory under `<archive>/exports/`; a relative destination
is placed under that directory too, an absolute one is used as given. A destination that already
holds files is refused (409) so an export never overwrites another export or the archive.
Object-store destinations (`s3://`) are not supported by the stores yet: 400.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.filters import parse_filter, raw_from_body, single
from api.openapi import errors, export_body, ok
from api.openapi_models import ExportManifest

__all__ = ["exports_root", "router"]

router = APIRouter(tags=["exports"])

MAX_BODY_BYTES: Final = 1024 * 1024
MAX_PATH_CHARS: Final = 4096


def exports_root(archive_url: str) -> Path:
    """`<archive>/exports` for a local archive (a path or file:// URL)."""
    parts = urlsplit(archive_url)
    if parts.scheme not in ("", "file") and len(parts.scheme) > 1:  # one letter: a Windows drive
        raise ApiError(
            400,
            "unsupported_destination",
            "the archive is not local: give a local `destination` for the export",
        )
    local = parts.netloc + parts.path if parts.scheme == "file" else archive_url
    return Path(local) / "exports"


def _destination(value: object, archive_url: str) -> Path:
    """The export directory: a fresh one under the exports root unless the client named one."""
    if value is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return exports_root(archive_url) / f"export-{stamp}-{uuid.uuid4().hex[:8]}"
    if not isinstance(value, str) or not value or len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise ApiError(400, "invalid_query", "destination must be a non-empty path")
    scheme = urlsplit(value).scheme
    if scheme not in ("", "file") and len(scheme) > 1:
        raise ApiError(400, "unsupported_destination", f"{scheme}:// destinations are not supported")
    path = Path(value.removeprefix("file://"))
    return path if path.is_absolute() else exports_root(archive_url) / path


def _refuse_existing(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ApiError(409, "destination_exists", "the destination exists and is not an empty directory")


@router.post(
    "/api/exports",
    summary="Export matching events as partitioned Parquet with a manifest",
    response_model=None,
    responses=ok(ExportManifest, "the manifest")
    | errors(400, 409, 413, s409="the destination exists and is not an empty directory"),
    openapi_extra=export_body(),
)
async def create_export(request: Request, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """Body: the read filters (`from`, `to`, `event_type`, ...) and an optional `destination`."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"an export request is at most {MAX_BODY_BYTES} bytes")
    try:
        parsed = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    raw = raw_from_body(parsed)
    flt = parse_filter(raw)
    requested = single(raw, "destination")
    target = _destination(requested, settings.archive_url)
    await run_in_threadpool(_refuse_existing, target)
    result = await run_in_threadpool(store.export, flt, str(target))
    return {**result.manifest, "destination": result.destination}
