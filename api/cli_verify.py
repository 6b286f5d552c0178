"""`govtrack verify`: check an export or archive against a signed checkpoint, offline.

    govtrack verify EXPORT --key KEY [--checkpoint FILE] [--old-checkpoint FILE] [--tree DIR]
    govtrack verify EXPORT --key KEY --proof FILE --event-id ID

No server, no network, no settings: the auditor brings the log's verifier key (the vkey string
or a file holding it), never one taken from the export. The first form recomputes every leaf
and the root (storage/log/verify.py says what is checked); the second checks one event's
tlog-proof (from `GET /api/events/{id}/proof`) against the event's row in the export.

Exit codes: 0 everything checks and at least one event was checked; 1 a check failed (the first
bad leaf index and event id are printed); 2 usage error (a file missing, a malformed key);
3 the log checks but `--require-complete-sessions` found sessions with gaps, conflicting
numbers or no session_end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.log.canonical import leaf_hashes
from storage.log.note import NoteError, Verifier
from storage.log.proofs import parse_tlog_proof, verify_tlog_proof
from storage.log.verify import TREE_DIR, Report, export_files, verify_export

__all__ = ["add_verify_parser", "run_verify"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INCOMPLETE: Final = 3
_SHOWN: Final = 20


def add_verify_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `verify` on the `govtrack` command's subparsers."""
    verify = commands.add_parser(
        "verify",
        help="verify an export or archive against a signed checkpoint (offline)",
        description="Recompute every event's leaf hash and the Merkle root of an export or archive "
        "and check them against a signed checkpoint; or check one event's inclusion proof. "
        "Offline: no server, no network. Exit 0 only when everything checks and at least one "
        "event was checked; 1 when a check fails (naming the first bad leaf and event); 2 on a "
        "usage error; 3 with --require-complete-sessions when sessions are incomplete.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  govtrack verify ./export --key log.vkey --checkpoint checkpoint.txt\n"
        "  govtrack verify ./export --key log.vkey --checkpoint new.txt --old-checkpoint kept.txt\n"
        "  govtrack verify ./export --key log.vkey --proof event.tlog-proof --event-id 1f0c...",
    )
    verify.add_argument("export", type=Path, help="export or archive directory (or one Parquet file)")
    verify.add_argument("--key", required=True, help="the log's verifier key, or a file holding it")
    verify.add_argument(
        "--checkpoint", type=Path, help=f"signed checkpoint (default: EXPORT/{TREE_DIR}/checkpoint)"
    )
    verify.add_argument(
        "--old-checkpoint", type=Path, help="an older checkpoint you kept: prove the log extends it"
    )
    verify.add_argument(
        "--tree",
        type=Path,
        help=f"the log's tree files, to locate rewritten leaves (default: EXPORT/{TREE_DIR}/tree)",
    )
    verify.add_argument(
        "--partial",
        action="store_true",
        help="the export holds only some events (a filtered export, the archive): check each against "
        "the log's tree files (which must hash to the signed root); absent leaves are counted, not failures",
    )
    verify.add_argument("--proof", type=Path, help="a tlog-proof file: check only this event's inclusion")
    verify.add_argument("--event-id", help="the event the --proof is for")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--require-complete-sessions",
        action="store_true",
        help="exit 3 when a session has missing or conflicting session_seq numbers or no session_end",
    )


def _read_key(text: str) -> Verifier:
    """The verifier key given inline (`name+id+key`) or in a file.

    Text that is neither names both readings: a mistyped key-file path would otherwise be
    reported as a malformed key.
    """
    path = Path(text)
    if path.is_file():
        return Verifier.from_vkey(path.read_text(encoding="utf-8").strip())
    try:
        return Verifier.from_vkey(text.strip())
    except NoteError as exc:
        raise NoteError(f"--key {text}: no such file, and not a verifier key (name+id+key): {exc}") from exc


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def run_verify(args: argparse.Namespace) -> int:
    """Run `govtrack verify` with parsed arguments; returns the exit code."""
    try:
        verifier = _read_key(args.key)
        if args.proof is not None:
            return _verify_proof(args, verifier)
        checkpoint_path = args.checkpoint or args.export / TREE_DIR / "checkpoint"
        checkpoint = _read(checkpoint_path)
        old = _read(args.old_checkpoint) if args.old_checkpoint else None
        if not args.export.exists():
            raise FileNotFoundError(f"no export at {args.export}")
    except (OSError, NoteError, UnicodeDecodeError) as exc:
        print(f"govtrack verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = verify_export(
            args.export, checkpoint, verifier, old_checkpoint_note=old, tree=args.tree, partial=args.partial
        )
    except (ValueError, KeyError, pa.ArrowException) as exc:
        print(f"govtrack verify: cannot read the export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(_as_json(report), indent=2) if args.json else _as_text(report))
    if not report.ok:
        return EXIT_FAILED
    if args.require_complete_sessions and _incomplete(report):
        return EXIT_INCOMPLETE
    return EXIT_OK


def _incomplete_sessions(report: Report) -> pa.Table:
    sessions = report.sessions
    if sessions is None or sessions.num_rows == 0:
        return pa.table({"session_id": pa.array([], pa.string())})
    bad = pc.or_(
        pc.or_(
            pc.greater(sessions["missing_count"], 0),
            pc.greater(pc.list_value_length(sessions["conflicting_seq"]), 0),
        ),
        pc.invert(sessions["has_end"]),
    )
    return sessions.filter(bad)


def _incomplete(report: Report) -> bool:
    return bool(_incomplete_sessions(report).num_rows > 0)


def _session_lines(report: Report) -> list[str]:
    sessions = report.sessions
    if sessions is None:  # not read: the verification stopped before the events
        return []
    if sessions.num_rows == 0:
        return ["sessions: none (no event carries a session_id)"]
    gaps = sessions.filter(pc.greater(sessions["missing_count"], 0))
    conflicts = sessions.filter(pc.greater(pc.list_value_length(sessions["conflicting_seq"]), 0))
    no_end = sessions.filter(pc.invert(sessions["has_end"]))
    lines = [
        f"sessions: {sessions.num_rows}; {gaps.num_rows} with missing session_seq, "
        f"{conflicts.num_rows} with a number sent with two contents, {no_end.num_rows} without session_end"
    ]
    for row in gaps.slice(0, _SHOWN).to_pylist():
        ranges = ", ".join(
            f"{r['first']}..{r['last']}" if r["first"] != r["last"] else str(r["first"])
            for r in row["missing"][:5]
        )
        lines.append(f"  session {row['session_id']}: missing {ranges}")
    for row in conflicts.slice(0, _SHOWN).to_pylist():
        lines.append(
            f"  session {row['session_id']}: numbers with two contents {row['conflicting_seq'][:10]}"
        )
    return lines


def _as_text(report: Report) -> str:
    cp = report.checkpoint
    head = f"govtrack verify: {report.checked} events checked"
    if cp is not None:
        head += f" against checkpoint {cp.origin} size {cp.size} root {cp.root.hex()}"
    lines = [head]
    if report.not_checked:
        lines.append(
            f"not checked: {len(report.not_checked)} Parquet file(s) outside the archive's "
            f"year=YYYY/month=MM/ directories (not archived), e.g. {report.not_checked[0]}"
        )
    first = report.first()
    if report.ok:
        if report.partial:
            lines.append(
                "OK (partial): every event held recomputes to the signed tree's leaf at its index; "
                f"{report.absent} leaves of the log are not in this export"
            )
        else:
            lines.append("OK: every leaf recomputed, the root matches, the checkpoint's signature verifies")
        if report.old_checkpoint is not None:
            lines.append(f"OK: the log extends the older checkpoint of size {report.old_checkpoint.size}")
    else:
        lines.append(
            f"FAILED: {len(report.findings)} finding(s); first: {first.line() if first else 'no event checked'}"
        )
        for finding in sorted(report.findings, key=lambda f: (f.leaf_index is None, f.leaf_index or 0))[
            :_SHOWN
        ]:
            lines.append(f"  [{finding.kind}] {finding.line()}")
    return "\n".join(lines + _session_lines(report))


def _as_json(report: Report) -> dict[str, object]:
    cp = report.checkpoint
    first = report.first()
    incomplete = _incomplete_sessions(report)
    return {
        "ok": report.ok,
        "checked": report.checked,
        "checkpoint": None if cp is None else {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()},
        "first": None
        if first is None
        else {
            "kind": first.kind,
            "leaf_index": first.leaf_index,
            "event_id": first.event_id,
            "message": first.message,
        },
        "findings": [
            {"kind": f.kind, "leaf_index": f.leaf_index, "event_id": f.event_id, "message": f.message}
            for f in report.findings
        ],
        "partial": report.partial,
        "absent": report.absent,
        "not_checked": report.not_checked[:_SHOWN],
        "not_checked_count": len(report.not_checked),
        "sessions": None if report.sessions is None else report.sessions.num_rows,
        "incomplete_sessions": incomplete.slice(0, 1000).to_pylist() if incomplete.num_rows else [],
    }


def _verify_proof(args: argparse.Namespace, verifier: Verifier) -> int:
    """Check one event's tlog-proof against that event's row, recomputed from the export."""
    if not args.event_id:
        print("govtrack verify: --proof needs --event-id", file=sys.stderr)
        return EXIT_USAGE
    proof = _read(args.proof)
    row = _find_event(args.export, args.event_id)
    if row is None:
        print(f"FAILED: event {args.event_id} is not in {args.export}")
        return EXIT_FAILED
    held = row.column("leaf_index")[0].as_py()
    if held is None:
        print(f"FAILED: event {args.event_id} has no leaf_index: it is outside the log (stored before it)")
        return EXIT_FAILED
    try:
        # the indexes first: another event's proof would otherwise only fail as "not included"
        claimed = parse_tlog_proof(proof).index
        if held != claimed:
            print(
                f"FAILED: event {args.event_id} is leaf {held} in the export, the proof is for leaf {claimed}"
            )
            return EXIT_FAILED
        index, checkpoint = verify_tlog_proof(proof, leaf_hashes(row).to_pylist()[0], verifier)
    except NoteError as exc:
        print(f"FAILED: event {args.event_id}: {exc}")
        return EXIT_FAILED
    where = f"{checkpoint.origin} at size {checkpoint.size} (root {checkpoint.root.hex()})"
    print(f"OK: event {args.event_id} is leaf {index} of {where}")
    return EXIT_OK


def _find_event(export: Path, event_id: str) -> pa.Table | None:
    for file in export_files(export):
        table = pq.read_table(file, filters=[("event_id", "=", event_id)])
        if table.num_rows:
            return table.slice(0, 1)
    return None
