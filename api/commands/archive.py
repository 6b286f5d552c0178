"""`govtrack archive [--before YYYY-MM] [--dry-run]` and `govtrack archive verify [--month YYYY-MM]`.

`archive` moves every hot month before `--before` (default: the month GOVTRACK_ARCHIVE_AFTER_DAYS
points at) to GOVTRACK_ARCHIVE_URL, each verified and committed before its hot copy is dropped
(storage.archive.mover), then applies GOVTRACK_RETENTION_DAYS when set. It opens the store itself:
a server running on the same embedded store holds it, so use `POST /api/archive` there instead.

`archive verify` needs no store: it re-reads every manifest and file of the archive (or of one
month) and exits 0 only when every sha256, size, row count and fingerprint matches, no listed file
is missing, no unlisted file exists, and at least one file was checked; otherwise it names the
first problem (all of them with --json) and exits 1.

Also here: the progress of `govtrack export` (api.commands.export) around the tiered store's own
export, so a CLI export reaches archived months and object-store URLs and carries the same `log/`
as `POST /api/exports`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING

from api.commands.common import EXIT_FAILURE, EXIT_OK, JobError, exit_codes, open_tiered, paragraph
from api.settings import Settings

if TYPE_CHECKING:
    from storage.archive.tiers import TieredStore
    from storage.base import EventFilter, ExportResult

__all__ = ["add_parser", "export_with_progress", "run"]


def _month(text: str) -> int:
    from storage.archive.manifest import parse_month

    try:
        return parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `govtrack archive` and `govtrack archive verify`."""
    archive = commands.add_parser(
        "archive",
        help="move old months to the archive (verified), or verify the archive",
        description=paragraph(
            "Move every hot month before --before (default: the month GOVTRACK_ARCHIVE_AFTER_DAYS "
            "points at) to GOVTRACK_ARCHIVE_URL (a path, s3:// or abfs://): files written, read back "
            "and hashed, reconciled with the hot store (count and fingerprint), the month's manifest "
            "committed, and only then the hot copy dropped. Then GOVTRACK_RETENTION_DAYS, when set. "
            "`govtrack archive verify` checks the archive instead."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_codes(
            "failure: the store could not be opened, a month did not reconcile, or verify found a problem"
        )
        + "\n\nexamples:\n  govtrack archive --before 2025-01 --dry-run\n  govtrack archive verify --month 2024-12",
        allow_abbrev=False,
    )
    archive.add_argument("--before", type=_month, metavar="YYYY-MM", help="first month kept hot")
    archive.add_argument("--dry-run", action="store_true", help="only say what would move")
    archive.add_argument("--json", action="store_true", help="print the report as JSON")
    actions = archive.add_subparsers(dest="archive_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="re-read every manifest and file of the archive",
        description=paragraph(
            "Exit 0 only when every file's sha256, size, rows and fingerprint match its month's "
            "manifest, no listed file is missing, no unlisted file exists, and at least one file was "
            "checked; otherwise print the first problem and exit 1."
        ),
        epilog=exit_codes("the archive did not verify (the first problem is printed)"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("--month", type=_month, metavar="YYYY-MM", help="check this month only")
    verify.add_argument("--json", action="store_true", help="print the whole report as JSON")


def export_with_progress(store: TieredStore, flt: EventFilter, destination: str) -> ExportResult:
    """`store.export` with a progress bar (terminal) or lines (otherwise) on stderr.

    The store's own export, the one `POST /api/exports` runs: cut at a signed checkpoint, with
    `log/` written, so `govtrack verify` checks a CLI export as it checks the API's.
    """
    from api.commands.progress import Progress

    progress = Progress(store.stats(flt, 1).total_events, "export", stream=sys.stderr)
    try:
        return store.export(flt, destination, on_rows=progress.update)
    finally:
        progress.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Archive (then retention), or verify."""
    if args.archive_command == "verify":
        return _verify(args, settings)
    from api.tiers import cutoff_month
    from storage.archive.manifest import month_text
    from storage.archive.mover import archive_months
    from storage.archive.retention import apply_retention
    from storage.errors import StoreError

    before = args.before
    if before is None:
        if settings.archive_after_days is None:
            raise JobError("--before YYYY-MM is required: GOVTRACK_ARCHIVE_AFTER_DAYS is not set")
        before = cutoff_month(dt.datetime.now(dt.UTC), settings.archive_after_days)
    store = open_tiered(settings)
    try:
        report = archive_months(store, before, dry_run=args.dry_run, on_step=_step_line)
        retention = (
            apply_retention(store, settings.retention_days).to_dict()
            if settings.retention_days is not None and not args.dry_run
            else None
        )
    except StoreError as exc:
        raise JobError(f"archiving failed: {exc}") from exc
    finally:
        store.close()
    answer = report.to_dict()
    if args.json:
        print(json.dumps({**answer, "retention": retention}, indent=2))
        return EXIT_OK
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {answer['rows']:,} events in {len(answer['months'])} month(s) before {month_text(before)}")
    for m in answer["months"]:
        gen = f" as generation {m['generation']}" if m["generation"] else ""
        print(f"  {m['month']}: {m['rows']:,} events, {m['files']} file(s){gen} ({m['status']})")
    for d in (retention or {}).get("deleted", []):
        print(f"  retention deleted {d['month']}: {d['rows']:,} events, {len(d['files'])} file(s)")
    for h in (retention or {}).get("held", []):
        print(f"  retention kept {h['month']}: legal hold {', '.join(h['holds'])}")
    return EXIT_OK


def _step_line(step: str, month: int) -> None:
    from storage.archive.manifest import month_text

    print(f"archive {month_text(month)}: {step.replace('_', ' ')}", file=sys.stderr, flush=True)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from api.tiers import object_store_options
    from storage.archive.location import open_location
    from storage.archive.verify import verify_archive
    from storage.errors import StoreError

    try:
        location = open_location(settings.archive_url, object_store_options(settings))
    except StoreError as exc:
        raise JobError(str(exc)) from exc
    report = verify_archive(location, args.month)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        print(f"verified {report.files_checked} file(s), {report.rows:,} events in {report.months} month(s)")
    if report.ok:
        return EXIT_OK
    first = report.problems[0] if report.problems else "no archived file to check"
    print(f"govtrack: archive verify failed: {first}", file=sys.stderr)
    return EXIT_FAILURE
