"""Signed notes, checkpoints and proof texts.

The Go reference vector, strict parsing, and a signer that never signs a checkpoint inconsistent
with the last one.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from storage.log.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    InconsistentCheckpointError,
    verify_checkpoint,
)
from storage.log.merkle import EMPTY_ROOT, consistency_proof, inclusion_proof, leaf_hash, root_from_leaves
from storage.log.note import (
    NoteError,
    Signer,
    Verifier,
    generate_signer,
    load_or_create_signer,
    open_note,
    sign_note,
)
from storage.log.proofs import (
    check_consistency,
    format_consistency_proof,
    format_tlog_proof,
    parse_consistency_proof,
    parse_tlog_proof,
    verify_tlog_proof,
)
from tests.storage.log import vectors as v

LEAVES = [leaf_hash(str(i).encode()) for i in range(40)]


def _subtree(start: int, end: int) -> bytes:
    return root_from_leaves(LEAVES[start:end])


def test_go_sumdb_note_vector_byte_for_byte() -> None:
    signer = Signer.from_skey(v.GO_NOTE_SKEY)
    assert signer.skey() == v.GO_NOTE_SKEY
    assert signer.verifier.vkey() == v.GO_NOTE_VKEY
    note = sign_note(v.GO_NOTE_TEXT, signer)
    assert note == v.GO_NOTE_TEXT + "\n" + v.GO_NOTE_SIGNATURE
    assert open_note(note, [Verifier.from_vkey(v.GO_NOTE_VKEY)]) == v.GO_NOTE_TEXT


def test_open_note_rejects_tampering_and_unknown_keys() -> None:
    verifier = Verifier.from_vkey(v.GO_NOTE_VKEY)
    note = v.GO_NOTE_TEXT + "\n" + v.GO_NOTE_SIGNATURE
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace("problem,", "problem;"), [verifier])
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_note(note, [generate_signer("PeterNeumann").verifier])  # same name, other key id
    other = generate_signer("someone.else/log")
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_note(sign_note(v.GO_NOTE_TEXT, other), [verifier])
    for bad in [note.rstrip("\n"), note.replace("\n\n", "\n"), note + "\x01", note.replace("\u2014", "-")]:
        with pytest.raises(NoteError):
            open_note(bad, [verifier])


def test_key_strings_are_checked() -> None:
    with pytest.raises(NoteError, match="id does not match"):
        Verifier.from_vkey(v.GO_NOTE_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(NoteError):
        Verifier.from_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==")
    with pytest.raises(NoteError):
        Signer.from_skey(v.GO_NOTE_SKEY.replace("PRIVATE+KEY+", ""))
    with pytest.raises(NoteError):
        generate_signer("has space")


def test_key_file_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    with pytest.raises(FileNotFoundError):
        load_or_create_signer(path, "govtrack.test/log", create=False)
    signer, created = load_or_create_signer(path, "govtrack.test/log", create=True)
    assert created
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, created_again = load_or_create_signer(path, "govtrack.test/log", create=True)
    assert not created_again
    assert again.skey() == signer.skey()
    with pytest.raises(NoteError, match="named"):
        load_or_create_signer(path, "another/log", create=True)


def test_checkpoint_text_and_strict_parsing() -> None:
    signer = generate_signer("govtrack.test/log")
    root = root_from_leaves(LEAVES[:7])
    note = Checkpoint("govtrack.test/log", 7, root).sign(signer)
    assert note.startswith(
        f"govtrack.test/log\n7\n{base64.b64encode(root).decode()}\n\n\u2014 govtrack.test/log "
    )
    assert verify_checkpoint(note, signer.verifier) == Checkpoint("govtrack.test/log", 7, root)
    text = Checkpoint("govtrack.test/log", 7, root).text()
    for bad in [
        text.replace("\n7\n", "\n07\n"),
        text.replace("\n7\n", "\n-7\n"),
        text + "ext\n",
        text.replace("=", ""),
    ]:
        with pytest.raises(NoteError):
            verify_checkpoint(sign_note(bad, signer), signer.verifier)
    with pytest.raises(NoteError, match="expected"):
        verify_checkpoint(note, signer.verifier, origin="other/log")


def test_signer_refuses_an_inconsistent_checkpoint(tmp_path: Path) -> None:
    signer = generate_signer("govtrack.test/log")
    checkpoints = CheckpointSigner(tmp_path, signer)
    assert checkpoints.latest() is None
    checkpoints.publish(10, root_from_leaves(LEAVES[:10]), lambda m, n: consistency_proof(m, n, _subtree))
    note = checkpoints.publish(
        20, root_from_leaves(LEAVES[:20]), lambda m, n: consistency_proof(m, n, _subtree)
    )
    assert verify_checkpoint(note, signer.verifier).size == 20
    forked = [*LEAVES[:5], leaf_hash(b"rewritten"), *LEAVES[6:30]]

    def forked_subtree(start: int, end: int) -> bytes:
        return root_from_leaves(forked[start:end])

    with pytest.raises(InconsistentCheckpointError, match="does not extend"):
        checkpoints.publish(
            30, root_from_leaves(forked), lambda m, n: consistency_proof(m, n, forked_subtree)
        )
    with pytest.raises(InconsistentCheckpointError, match="fewer"):
        checkpoints.publish(15, root_from_leaves(LEAVES[:15]), lambda m, n: consistency_proof(m, n, _subtree))
    with pytest.raises(InconsistentCheckpointError):
        checkpoints.publish(20, root_from_leaves(forked[:20]), lambda m, n: [])
    latest = checkpoints.latest()
    assert latest is not None
    assert latest[0].size == 20
    assert latest[1] == note


def test_tlog_proof_round_trip_and_rejections() -> None:
    signer = generate_signer("govtrack.test/log")
    note = Checkpoint("govtrack.test/log", 13, root_from_leaves(LEAVES[:13])).sign(signer)
    proof = inclusion_proof(6, 13, _subtree)
    text = format_tlog_proof(6, proof, note)
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "index 6"
    assert lines[2 : 2 + len(proof)] == [base64.b64encode(h).decode() for h in proof]
    assert lines[2 + len(proof)] == ""
    assert text.endswith(note)
    assert parse_tlog_proof(text).hashes == tuple(proof)
    assert verify_tlog_proof(text, LEAVES[6], signer.verifier)[0] == 6
    with pytest.raises(NoteError, match="not included"):
        verify_tlog_proof(text, LEAVES[7], signer.verifier)
    with pytest.raises(NoteError, match="not included"):
        verify_tlog_proof(text.replace("index 6", "index 7"), LEAVES[6], signer.verifier)
    with pytest.raises(NoteError):
        verify_tlog_proof(text, LEAVES[6], generate_signer("govtrack.test/log").verifier)
    for bad in [
        text.replace("index 6", "index 06"),
        text.replace("tlog-proof@v1", "tlog-proof@v2"),
        text.replace(lines[2], lines[2][:-4]),
        text.replace("\n\n", "\n", 1),
    ]:
        with pytest.raises(NoteError):
            verify_tlog_proof(bad, LEAVES[6], signer.verifier)
    extra = format_tlog_proof(6, proof, note, extra=b"ctx")
    assert parse_tlog_proof(extra).extra == b"ctx"


def test_consistency_proof_text() -> None:
    signer = generate_signer("govtrack.test/log")
    old, new = (
        Checkpoint("govtrack.test/log", 9, root_from_leaves(LEAVES[:9])),
        Checkpoint("govtrack.test/log", 33, root_from_leaves(LEAVES[:33])),
    )
    text = format_consistency_proof(9, 33, consistency_proof(9, 33, _subtree))
    assert text.startswith("govtrack/consistency-proof@v1\nold 9\nnew 33\n")
    assert parse_consistency_proof(text).old_size == 9
    assert check_consistency(text, old, new)
    assert not check_consistency(text, new, old)
    assert not check_consistency(
        text.replace("old 9", "old 10"),
        Checkpoint("govtrack.test/log", 10, root_from_leaves(LEAVES[:10])),
        new,
    )
    with pytest.raises(NoteError):
        parse_consistency_proof(text.rstrip("\n"))
    assert check_consistency(
        format_consistency_proof(0, 33, []), Checkpoint("govtrack.test/log", 0, EMPTY_ROOT), new
    )
    del signer
