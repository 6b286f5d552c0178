"""`govtrack verify` over exports, and the standalone docs script.

Exit 0 only when everything checks; every kind of tampering fails naming the first bad leaf
index and event id; docs/verify_root.py agrees on the root and catches a changed field.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analytics.demo import generate_events
from api.cli import main
from storage.log.checkpoint import Checkpoint
from storage.log.merkle import root_from_leaves
from storage.log.note import generate_signer
from storage.log.proofs import format_tlog_proof
from storage.log.treefile import TreeFiles
from tests.storage.log.exportkit import (
    ORIGIN,
    LogExport,
    build_export,
    demo_export,
    read_rows,
    rehash,
    tampered_copy,
)

N = 60


@pytest.fixture
def export(tmp_path: Path) -> LogExport:
    return demo_export(tmp_path / "export", N)


def _verify(
    export_path: Path, vkey: str, *extra: str, checkpoint: Path | None = None
) -> tuple[int, dict[str, object]]:
    args = ["verify", str(export_path), "--key", vkey, "--json", *extra]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, json.loads(out.getvalue()) if out.getvalue().strip().startswith("{") else {}


def _first(report: dict[str, object]) -> tuple[object, object, object]:
    first = report["first"]
    assert isinstance(first, dict)
    return first["kind"], first["leaf_index"], first["event_id"]


def _set(rows: pa.Table, leaf: int, column: str, value: object) -> pa.Table:
    values = rows.column(column).to_pylist()
    values[leaf] = value
    index = rows.schema.get_field_index(column)
    return rows.set_column(index, rows.schema.field(column), pa.array(values, rows.schema.field(column).type))


def test_an_untouched_export_verifies(export: LogExport) -> None:
    code, report = _verify(export.path, export.vkey)
    assert code == 0
    assert report["ok"] is True
    assert report["checked"] == N
    assert report["findings"] == []
    checkpoint = report["checkpoint"]
    assert isinstance(checkpoint, dict)
    assert checkpoint["size"] == N
    assert checkpoint["origin"] == ORIGIN


def test_the_key_may_be_a_file_and_text_output_says_ok(
    export: LogExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "log.vkey"
    key.write_text(export.vkey + "\n")
    assert main(["verify", str(export.path), "--key", str(key)]) == 0
    assert "OK: every leaf recomputed" in capsys.readouterr().out


def test_changed_field(export: LogExport, tmp_path: Path) -> None:
    rows = _set(read_rows(export.path), 5, "new_value", "tampered")
    code, report = _verify(tampered_copy(export, tmp_path / "t", rows), export.vkey)
    assert code == 1
    assert _first(report) == ("changed", 5, export.event_id(5))


def test_changed_field_with_rewritten_leaf_hash_is_located_by_the_tree(
    export: LogExport, tmp_path: Path
) -> None:
    rows = rehash(_set(read_rows(export.path), 5, "new_value", "tampered"))
    tampered = tampered_copy(export, tmp_path / "t", rows)
    code, report = _verify(tampered, export.vkey)
    assert code == 1
    assert _first(report) == ("changed", 5, export.event_id(5))
    # without the tree files the root still fails, but no leaf can be named
    code, report = _verify(tampered, export.vkey, "--tree", str(tmp_path / "no-tree"))
    assert code == 1
    assert _first(report) == ("root", None, None)


def test_deleted_event(export: LogExport, tmp_path: Path) -> None:
    rows = read_rows(export.path)
    rows = rows.filter(pc.not_equal(rows["leaf_index"], 7))
    code, report = _verify(tampered_copy(export, tmp_path / "t", rows), export.vkey)
    assert code == 1
    assert _first(report)[:2] == ("deleted", 7)
    first = report["first"]
    assert isinstance(first, dict)
    assert export.event_id(8) in str(first["message"])


def test_inserted_event_at_the_end_and_in_the_middle(export: LogExport, tmp_path: Path) -> None:
    rows = read_rows(export.path)
    extra = rehash(_set(_set(rows.slice(3, 1), 0, "event_id", "forged-1"), 0, "leaf_index", N))
    code, report = _verify(
        tampered_copy(export, tmp_path / "end", pa.concat_tables([rows, extra])), export.vkey
    )
    assert code == 1
    assert _first(report) == ("inserted", N, "forged-1")
    middle = rehash(_set(_set(rows.slice(3, 1), 0, "event_id", "forged-2"), 0, "leaf_index", 3))
    code, report = _verify(
        tampered_copy(export, tmp_path / "mid", pa.concat_tables([rows, middle])), export.vkey
    )
    assert code == 1
    assert _first(report)[:2] == ("inserted", 3)


def test_two_events_swapped(export: LogExport, tmp_path: Path) -> None:
    rows = read_rows(export.path)
    swapped = _set(_set(rows, 10, "leaf_index", 11), 11, "leaf_index", 10)  # history reordered
    code, report = _verify(tampered_copy(export, tmp_path / "t", swapped), export.vkey)
    assert code == 1
    assert _first(report) == ("changed", 10, export.event_id(11))
    # swapping the rows' physical order only (each keeps its index) changes no history
    reordered = rows.take(pa.array([*range(11), 12, 11, *range(13, N)]))
    assert _verify(tampered_copy(export, tmp_path / "order", reordered), export.vkey)[0] == 0


def test_duplicate_event(export: LogExport, tmp_path: Path) -> None:
    rows = read_rows(export.path)
    code, report = _verify(
        tampered_copy(export, tmp_path / "same", pa.concat_tables([rows, rows.slice(4, 1)])), export.vkey
    )
    assert code == 1
    assert _first(report) == ("inserted", 4, export.event_id(4))
    again = rehash(_set(rows.slice(4, 1), 0, "leaf_index", N))  # the same event as a new leaf
    code, report = _verify(
        tampered_copy(export, tmp_path / "new", pa.concat_tables([rows, again])), export.vkey
    )
    findings = report["findings"]
    assert isinstance(findings, list)
    kinds = {(f["kind"], f["leaf_index"], f["event_id"]) for f in findings}
    assert code == 1
    assert ("duplicate", N, export.event_id(4)) in kinds
    assert _first(report)[1] == N


def test_truncated_tail(export: LogExport, tmp_path: Path) -> None:
    rows = read_rows(export.path).slice(0, N - 3)
    code, report = _verify(tampered_copy(export, tmp_path / "t", rows), export.vkey)
    assert code == 1
    assert _first(report)[:2] == ("truncated", N - 3)
    first = report["first"]
    assert isinstance(first, dict)
    assert export.event_id(N - 4) in str(first["message"])


def test_older_checkpoint_consistent_and_forked(tmp_path: Path) -> None:
    events = generate_events(N, seed=9)
    export = build_export(tmp_path / "export", events, checkpoint_at=[20])
    old_note = Checkpoint(
        ORIGIN, 20, root_from_leaves(export.rows.column("leaf_hash").to_pylist()[:20])
    ).sign(export.signer)
    old = tmp_path / "old.txt"
    old.write_text(old_note)
    code, report = _verify(export.path, export.vkey, "--old-checkpoint", str(old))
    assert code == 0
    assert report["ok"] is True
    # the log's key signed a different history of 20 events: the new log does not extend it
    forked = build_export(tmp_path / "fork", generate_events(20, seed=10), export.signer)
    fork_note = tmp_path / "fork.txt"
    fork_note.write_text(forked.checkpoint.read_text())
    code, report = _verify(export.path, export.vkey, "--old-checkpoint", str(fork_note))
    assert code == 1
    assert _first(report)[:2] == ("consistency", 20)


def test_wrong_key_bad_key_no_events(export: LogExport, tmp_path: Path) -> None:
    code, report = _verify(export.path, generate_signer(ORIGIN).verifier.vkey())
    assert code == 1
    assert _first(report)[0] == "signature"
    assert main(["verify", str(export.path), "--key", "not-a-key"]) == 2
    empty = tmp_path / "empty"
    (empty / "log").mkdir(parents=True)
    (empty / "log" / "checkpoint").write_text(export.checkpoint.read_text())
    code, report = _verify(empty, export.vkey)
    assert code == 1
    assert _first(report)[0] == "empty"
    assert report["checked"] == 0


def test_a_missing_key_file_is_named(
    export: LogExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "log.vkey"
    assert main(["verify", str(export.path), "--key", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such file" in err
    assert main(["verify", str(export.path), "--key", "not-a-key"]) == 2
    assert "not-a-key: no such file, and not a verifier key" in capsys.readouterr().err


def test_a_failed_signature_says_nothing_of_sessions(
    export: LogExport, capsys: pytest.CaptureFixture[str]
) -> None:
    other = generate_signer(ORIGIN).verifier.vkey()
    assert main(["verify", str(export.path), "--key", other]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "signature" in out
    assert "sessions" not in out  # not read: the verification stopped at the signature


def test_one_events_proof(export: LogExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = TreeFiles(export.path / "log" / "tree")
    proof = tmp_path / "e.tlog-proof"
    proof.write_text(format_tlog_proof(17, tree.inclusion_proof(17, N), export.checkpoint.read_text()))
    args = [
        "verify",
        str(export.path),
        "--key",
        export.vkey,
        "--proof",
        str(proof),
        "--event-id",
        export.event_id(17),
    ]
    assert main(args) == 0
    assert f"is leaf 17 of {ORIGIN} at size {N}" in capsys.readouterr().out
    assert main([*args[:-1], export.event_id(18)]) == 1  # the proof is not that event's
    assert "is leaf 18 in the export, the proof is for leaf 17" in capsys.readouterr().out
    tampered = tampered_copy(export, tmp_path / "t", _set(read_rows(export.path), 17, "old_value", "x"))
    assert main(["verify", str(tampered), *args[2:]]) == 1


def test_incomplete_sessions_exit_3_only_when_required(tmp_path: Path) -> None:
    events = generate_events(N, seed=4)
    events = events.filter(pc.not_equal(events["event_type"], "session_end"))
    export = build_export(tmp_path / "export", events)
    code, report = _verify(export.path, export.vkey)
    assert code == 0
    assert report["incomplete_sessions"]
    expected = set(events.column("session_id").to_pylist()) - {None}
    incomplete = report["incomplete_sessions"]
    assert isinstance(incomplete, list)
    assert {s["session_id"] for s in incomplete} == expected
    assert _verify(export.path, export.vkey, "--require-complete-sessions")[0] == 3


def test_the_standalone_docs_script_agrees_and_catches_a_change(export: LogExport, tmp_path: Path) -> None:
    script = Path("docs/verify_root.py")
    run = subprocess.run(
        [sys.executable, str(script), str(export.path), str(export.checkpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = export.checkpoint.read_text().split("\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split("\n")[:2] == lines[1:3]
    tampered = tampered_copy(export, tmp_path / "t", _set(read_rows(export.path), 5, "new_value", "tampered"))
    run = subprocess.run(
        [sys.executable, str(script), str(tampered), str(export.checkpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert f"leaf 5 (event {export.event_id(5)})" in run.stdout
