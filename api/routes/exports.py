"""`POST /api/exports`: matching events to Parquet `year=YYYY/month=MM/` plus manifest.json.

Where an export may go (the confinement rules, issue 8):
- A `destination` is a relative path inside the exports root (`GOVTRACK_EXPORTS_DIR`, default
  `exports` beside a local archive, else `./exports`; never inside the archive, which
  `govtrack verify --partial` reads); without one, a fresh
  `export-<UTC stamp>-<random>` directory there. Absolute paths, `..`, `.`, empty segments,
  backslashes and control characters are refused.
- A URL is accepted only under a prefix of `GOVTRACK_EXPORT_URL_PREFIXES` (object stores; none by
  default, and `file://` never): the tiered store writes it (s3://, abfs://; storage.archive.exporter),
  with the same layout and manifest, and refuses (409) a URL that already holds files.
- Every refusal is the same 400 `invalid_destination`, decided from the text alone, so the answer
  never tells whether some path outside the root exists.
- The export directory is created exclusively (mkdir, never exist_ok), walking from the root with
  O_NOFOLLOW, so a symlink inside the root cannot lead out (400) and two exports can never write
  into one directory: the second one, or a destination that exists, is 409 `destination_exists`.
  A failed export removes the directory it created.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import shutil
import stat
import uuid
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.filters import parse_filter, raw_from_body, single
from api.limits import large_read_gate
from api.openapi import errors, export_body, ok
from api.openapi_models import ExportManifest
from api.settings import Settings
from storage.archive.exporter import DestinationExistsError, ExportFailedError

__all__ = ["exports_root", "local_destination", "reserve_directory", "router"]

router = APIRouter(tags=["exports"])

MAX_BODY_BYTES: Final = 1024 * 1024
MAX_PATH_CHARS: Final = 1024
MAX_SEGMENT_CHARS: Final = 255
_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\\]")
_INVALID: Final = (
    "destination must be a relative path inside the exports folder (no absolute path, no `..`), "
    "or a URL under an allowed prefix"
)


def _invalid() -> ApiError:
    return ApiError(
        400, "invalid_destination", _INVALID, details=[{"field": "destination", "message": _INVALID}]
    )


def exports_root(settings: Settings) -> Path:
    """The folder every export is written inside (absolute; not created here).

    By default `exports` beside a local archive (./exports beside the default ./archive), else
    ./exports: never inside the archive, whose verification would take an export's events for
    archived ones seen twice.
    """
    if settings.exports_dir is not None:
        return settings.exports_dir.absolute()
    parts = urlsplit(settings.archive_url)
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # one letter: a Windows drive
        local = parts.netloc + parts.path if parts.scheme == "file" else settings.archive_url
        return Path(local).absolute().parent / "exports"
    return Path("exports").absolute()


def local_destination(value: str) -> list[str]:
    """The path segments of a relative destination inside the root, or 400 `invalid_destination`.

    Decided from the text only: nothing outside the root is ever looked at.
    """
    if not value or len(value) > MAX_PATH_CHARS or _CONTROL.search(value) or _URL.match(value):
        raise _invalid()
    segments = value.removesuffix("/").split("/")
    for segment in segments:
        if segment in ("", ".", "..") or len(segment) > MAX_SEGMENT_CHARS:
            raise _invalid()
    return segments


def _allowed_url(value: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `value` lies under an allow-listed object-store prefix (never `file://`)."""
    if len(value) > MAX_PATH_CHARS or _CONTROL.search(value) or urlsplit(value).scheme.lower() == "file":
        return False
    if any(segment in (".", "..") for segment in unquote(urlsplit(value).path).split("/")):
        return False
    for prefix in prefixes:
        if value.startswith(prefix) and (
            prefix.endswith("/") or value == prefix or value[len(prefix) :].startswith("/")
        ):
            return True
    return False


def reserve_directory(root: Path, segments: list[str]) -> Path:
    """Create `root/segments...` exclusively and return it; 409 when it exists, 400 via a symlink.

    Parents may exist and be shared (created when missing); each is opened with O_NOFOLLOW
    relative to the one before, so no symlink is followed out of the root.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in segments[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=fd)
            child = _open_child(fd, name)
            os.close(fd)
            fd = child
        try:
            os.mkdir(segments[-1], 0o755, dir_fd=fd)
        except FileExistsError:
            raise _in_the_way(fd, segments[-1]) from None
    finally:
        os.close(fd)
    return root.joinpath(*segments)


def _open_child(fd: int, name: str) -> int:
    """Open the directory `name` under `fd` without following a symlink."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _in_the_way(fd, name) from None
        raise


def _in_the_way(fd: int, name: str) -> ApiError:
    """What is at `name` blocks the export: a symlink (400, it may lead out) or anything else (409)."""
    if stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode):
        return _invalid()
    return ApiError(409, "destination_exists", "the destination exists: exports never share a directory")


def _fresh_name() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"export-{stamp}-{uuid.uuid4().hex[:12]}"


def _target(value: object, settings: Settings) -> list[str] | str:
    """Segments of a local destination (to reserve), or an allow-listed URL (for the store)."""
    if value is None:
        return [_fresh_name()]
    if not isinstance(value, str):
        raise _invalid()
    if _URL.match(value) and _allowed_url(value, settings.export_url_prefixes):
        return value
    return local_destination(value)


def _export_into(store: StoreDep, flt: Any, root: Path, segments: list[str]) -> Any:
    """Reserve the directory, export into it; a failed export leaves nothing behind."""
    directory = reserve_directory(root, segments)
    try:
        return store.export(flt, str(directory))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


@router.post(
    "/api/exports",
    summary="Export matching events as partitioned Parquet with a manifest",
    response_model=None,
    responses=ok(ExportManifest, "the manifest")
    | errors(
        400,
        409,
        413,
        429,
        s400="invalid filters, or a destination outside the exports folder (`invalid_destination`)",
        s409="the destination exists: exports never share a directory",
    ),
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
    target = _target(single(raw, "destination"), settings)
    permit = large_read_gate(request).acquire()
    try:
        if isinstance(target, str):
            result = await run_in_threadpool(store.export, flt, target)
        else:
            result = await run_in_threadpool(_export_into, store, flt, exports_root(settings), target)
    except DestinationExistsError as exc:  # an object-store URL already holding files
        raise ApiError(409, "destination_exists", str(exc)) from exc
    except ExportFailedError as exc:  # the object store refused or is unreachable: nothing committed
        raise ApiError(503, "destination_unavailable", str(exc), headers={"Retry-After": "5"}) from exc
    finally:
        permit.release()
    return {**result.manifest, "destination": result.destination}
