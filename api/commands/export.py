"""`govtrack export`: matching events from the store to Parquet `year=/month=` files plus a manifest.

The store's own export (the one `POST /api/exports` runs), so the files and manifest are the same;
the exports-folder confinement of the HTTP route does not apply, since whoever runs this command
already has the machine. An existing non-empty directory is refused: exports never share one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from api.commands.archive import export_with_progress
from api.commands.common import EXIT_OK, JobError, exit_codes, open_tiered, paragraph, timestamp
from api.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `govtrack export`."""
    export = commands.add_parser(
        "export",
        help="export events to Parquet (year=/month= files plus manifest.json)",
        description=paragraph(
            "Export the events of GOVTRACK_STORE_URL in [--from, --to) as Parquet files "
            "partitioned year=YYYY/month=MM/ plus manifest.json (rows, files, sha256 of each, schema), "
            "and print the manifest's summary. Default destination: a fresh export-<time> directory in "
            "the exports folder (GOVTRACK_EXPORTS_DIR, else `exports` beside the archive)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_codes("failure: the store could not be opened or the export failed")
        + "\n\nexample:\n  govtrack export --from 2025-06-01 --to 2025-07-01 --to-url /srv/exports/june",
        allow_abbrev=False,
    )
    export.add_argument(
        "--from", dest="start", type=timestamp, metavar="T", help="first instant included (ISO-8601)"
    )
    export.add_argument(
        "--to", dest="end", type=timestamp, metavar="T", help="first instant excluded (ISO-8601)"
    )
    export.add_argument(
        "--to-url",
        metavar="DIR",
        help="destination: a local directory (new or empty), or an object-store URL the store can write",
    )
    export.add_argument("--json", action="store_true", help="print the whole manifest as JSON")


def destination(args: argparse.Namespace, settings: Settings) -> str:
    """Where the export goes; a local directory that exists must be empty."""
    from api.routes.exports import exports_root

    if args.to_url and "://" in args.to_url and not args.to_url.startswith("file://"):
        return str(args.to_url)
    if args.to_url:
        target = Path(args.to_url.removeprefix("file://")).absolute()
    else:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        target = exports_root(settings) / f"export-{stamp}-{uuid.uuid4().hex[:12]}"
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise JobError(f"{target} exists and is not an empty directory: exports never share one")
    return str(target)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Export and print the summary (or the manifest with --json)."""
    from storage.base import EventFilter
    from storage.errors import StoreError

    if args.start and args.end and args.start >= args.end:
        raise JobError("--from must be before --to")
    target = destination(args, settings)
    store = open_tiered(settings)  # archived months and s3:// / abfs:// URLs too (api.commands.archive)
    try:
        result = export_with_progress(store, EventFilter(start=args.start, end=args.end), target)
    except StoreError as exc:
        raise JobError(f"the export failed: {exc}") from exc
    finally:
        store.close()
    manifest: dict[str, Any] = {**result.manifest, "destination": result.destination}
    print(json.dumps(manifest, indent=2) if args.json else summary(manifest))
    return EXIT_OK


def summary(manifest: dict[str, Any]) -> str:
    """A few lines a person reads: where, how many rows and files, which months."""
    files = list(manifest.get("files", []))
    months = sorted({str(f["path"]).rsplit("/", 1)[0] for f in files})
    span = f"{months[0]} .. {months[-1]}" if months else "none"
    return "\n".join(
        [
            f"exported {int(manifest['rows']):,} events to {manifest['destination']}",
            f"files: {len(files)} ({', '.join(str(f['path']) for f in files[:3])}{', ...' if len(files) > 3 else ''})",
            f"months: {len(months)} ({span})",
            "manifest: manifest.json (sha256 of every file)",
        ]
    )
