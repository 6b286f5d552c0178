"""Verifiable history over HTTP on every store: checkpoint, key, proofs, consistency, completeness.

Leaf hashes are recomputed by docs/verify_root.py (tests/storage/log/storekit.py) from the events
the API returns, never taken from the response they are checked against.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from fastapi.testclient import TestClient

from storage.base import EventStore
from storage.log.checkpoint import verify_checkpoint
from storage.log.note import Verifier
from storage.log.proofs import check_consistency, verify_tlog_proof
from tests.api.readkit import assert_error, client_with
from tests.contract.events import BASE, eid, event, table
from tests.storage.log.storekit import independent_leaf, independent_root

TEXT = "text/plain; charset=utf-8"


def _post(client: TestClient, events: list[dict[str, Any]]) -> None:
    r = client.post("/api/events", json={"events": events})
    assert r.status_code == 200, r.text


def _sent(i: int, **fields: Any) -> dict[str, Any]:
    """An ingest event (JSON as the add-in sends it)."""
    ts = BASE + dt.timedelta(minutes=i)
    body = {
        "event_id": eid(i),
        "timestamp": ts.isoformat(),
        "event_type": "cell_change",
        "user_name": "CORP\\alice",
        "session_id": "s-1",
        "workbook_name": "book.xlsx",
        "sheet_name": "Sheet1",
        "cell_address": f"A{i}",
        "new_value": str(i),
    }
    return body | fields


def _row(api_event: dict[str, Any]) -> dict[str, Any]:
    """An API event as the stored row docs/verify_root.py canonicalises."""
    row = dict(api_event)
    for name in ("timestamp", "received_at"):
        row[name] = dt.datetime.fromisoformat(row[name].replace("Z", "+00:00"))
    row["attributes"] = [(k, json.dumps(v, separators=(",", ":"))) for k, v in row["attributes"].items()]
    return row


def _events(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/api/events", params={"limit": 1000, "order": "asc"})
    assert r.status_code == 200
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def test_every_event_has_a_proof_to_the_signed_checkpoint(client: TestClient) -> None:
    _post(client, [_sent(i) for i in range(1, 8)])
    _post(client, [_sent(i) for i in range(5, 13)])  # 5..7 again: no second leaf
    key = client.get("/api/log/key")
    assert (key.status_code, key.headers["content-type"]) == (200, TEXT)
    verifier = Verifier.from_vkey(key.text.strip())
    events = _events(client)
    assert sorted(e["leaf_index"] for e in events) == list(range(12))
    by_leaf = {e["leaf_index"]: e for e in events}
    leaves = [independent_leaf(_row(by_leaf[i])) for i in range(12)]
    assert [bytes.fromhex(by_leaf[i]["leaf_hash"]) for i in range(12)] == leaves
    for e in events:
        proof = client.get(f"/api/events/{e['event_id']}/proof")
        assert (proof.status_code, proof.headers["content-type"]) == (200, TEXT)
        index, checkpoint = verify_tlog_proof(proof.text, leaves[e["leaf_index"]], verifier)
        assert index == e["leaf_index"] < checkpoint.size <= 12  # the latest checkpoint covering it
        assert checkpoint.root == independent_root(leaves[: checkpoint.size])
    note = client.get("/api/log/checkpoint")
    assert (note.status_code, note.headers["content-type"]) == (200, TEXT)
    assert verify_checkpoint(note.text, verifier).size == 12


def test_consistency_between_a_kept_checkpoint_and_a_later_one(client: TestClient) -> None:
    _post(client, [_sent(i) for i in range(1, 6)])
    verifier = Verifier.from_vkey(client.get("/api/log/key").text.strip())
    client.get(f"/api/events/{eid(5)}/proof")  # signs a checkpoint covering leaf 4 if none does yet
    kept = verify_checkpoint(client.get("/api/log/checkpoint").text, verifier)
    assert kept.size == 5
    _post(client, [_sent(i) for i in range(6, 20)])
    client.get(f"/api/events/{eid(19)}/proof")
    latest = verify_checkpoint(client.get("/api/log/checkpoint").text, verifier)
    assert latest.size == 19
    proof = client.get("/api/log/consistency", params={"from": 5, "to": 19})
    assert (proof.status_code, proof.headers["content-type"]) == (200, TEXT)
    assert check_consistency(proof.text, kept, latest)
    default_to = client.get("/api/log/consistency", params={"from": 5})
    assert check_consistency(default_to.text, kept, latest)


def test_proof_and_consistency_errors_are_in_the_contract_shape(client: TestClient) -> None:
    _post(client, [_sent(1), _sent(2)])
    assert_error(client.get(f"/api/events/{uuid.uuid4()}/proof"), 404, "not_found")
    assert_error(client.get("/api/events/not-a-uuid/proof"), 404, "not_found")
    assert_error(client.get("/api/log/consistency"), 400, "invalid_query")
    assert_error(client.get("/api/log/consistency", params={"from": 2, "to": 1}), 400, "invalid_query")
    assert_error(client.get("/api/log/consistency", params={"from": 0, "to": 3}), 400, "invalid_query")
    assert_error(client.get("/api/log/consistency", params={"from": "x"}), 400, "invalid_query")


def test_read_endpoints_carry_leaf_index_and_session_seq(client: TestClient) -> None:
    _post(client, [_sent(1, session_seq=0), _sent(2, sessionSeq=1), _sent(3)])
    one = client.get(f"/api/events/{eid(2)}").json()
    assert (one["leaf_index"], one["session_seq"]) == (1, 1)
    assert len(one["leaf_hash"]) == 64
    history = client.get(
        "/api/cells/history",
        params={"workbook_name": "book.xlsx", "sheet_name": "Sheet1", "cell_address": "A3"},
    ).json()
    assert [c["leaf_index"] for c in history["changes"]] == [2]


def test_a_session_reports_missing_numbers_conflicts_and_its_end(client: TestClient) -> None:
    sent = [
        _sent(1, session_seq=0),
        _sent(2, session_seq=1),
        _sent(3, session_seq=3),
        _sent(4, session_seq=6),
        _sent(5, session_seq=3, new_value="another content"),  # number 3 twice, two contents
        # number 1 again under a new id with the same content: a resend, not a conflict
        _sent(2, session_seq=1) | {"event_id": str(uuid.uuid4())},
    ]
    _post(client, sent)
    body = client.get("/api/sessions/s-1").json()
    assert body["event_count"] == 6
    assert (body["max_seq"], body["missing_count"]) == (6, 3)
    assert body["missing_seq"] == [{"first": 2, "last": 2}, {"first": 4, "last": 5}]
    assert body["conflicting_seq"] == [3]
    assert body["has_end"] is False
    _post(client, [_sent(9, session_seq=7, event_type="session_end")])
    after = client.get("/api/sessions/s-1").json()
    assert (after["has_end"], after["max_seq"], after["missing_count"]) == (True, 7, 3)


def test_a_session_without_numbers_is_complete_but_for_its_end(client: TestClient) -> None:
    _post(client, [_sent(1), _sent(2)])
    body = client.get("/api/sessions/s-1").json()
    assert (body["max_seq"], body["missing_count"], body["missing_seq"]) == (None, 0, [])
    assert (body["conflicting_seq"], body["has_end"]) == ([], False)


def test_session_seq_is_validated_at_ingest(client: TestClient) -> None:
    bad = [
        _sent(1, session_seq=-1),
        _sent(2, session_seq="3"),
        _sent(3, session_seq=2.5),
        _sent(4, session_seq=True),
        _sent(5, session_seq=2**64),
    ]
    r = client.post(
        "/api/events", json={"events": [*bad, _sent(6, session_seq=None), _sent(7, leaf_index=3)]}
    )
    assert r.status_code == 207, r.text
    errors = r.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(i, "session_seq") for i in range(5)]
    stored = client.get(f"/api/events/{eid(7)}").json()
    assert stored["attributes"] == {"leaf_index": 3}  # a client's leaf_index is an attribute like any other
    assert stored["leaf_index"] == 1  # the log's own


def test_log_endpoints_need_the_read_scope(store: EventStore, tmp_path: Any) -> None:
    from api.app import create_app
    from api.settings import Settings

    settings = Settings(
        store_url=f"parquet://{tmp_path / 'unused'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        api_keys="ingest-key:ingest,read-key:read",
    )
    store.append(table([event(1)]))
    with TestClient(create_app(settings, store=store)) as client:
        for path in ("/api/log/checkpoint", "/api/log/key", f"/api/events/{eid(1)}/proof"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"X-API-Key": "ingest-key"}).status_code == 403
            assert client.get(path, headers={"X-API-Key": "read-key"}).status_code == 200


def test_several_writers_answer_501_in_the_contract_shape(shared_chdb: EventStore, tmp_path: Any) -> None:
    with client_with(shared_chdb, tmp_path) as client:
        _post(client, [_sent(1, session_seq=0)])
        for path in ("/api/log/checkpoint", "/api/log/key", f"/api/events/{eid(1)}/proof"):
            assert_error(client.get(path), 501, "log_disabled")
        assert_error(client.get("/api/log/consistency", params={"from": 0}), 501, "log_disabled")
        stored = client.get(f"/api/events/{eid(1)}").json()
        assert (stored["leaf_index"], stored["leaf_hash"], stored["session_seq"]) == (None, None, 0)
        assert client.get("/api/sessions/s-1").json()["max_seq"] == 0


def test_the_log_settings_name_its_directory_key_and_origin(tmp_path: Any) -> None:
    """GOVTRACK_LOG_DIR / _LOG_KEY_FILE / _LOG_ORIGIN reach the store the service builds itself."""
    from api.app import create_app
    from api.settings import Settings

    settings = Settings(
        store_url=f"parquet://{tmp_path / 'data'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        log_dir=tmp_path / "tlog",
        log_key_file=tmp_path / "keys" / "log.key",
        log_origin="audit.example.com/govtrack",
    )
    with TestClient(create_app(settings)) as client:
        _post(client, [_sent(1)])
        key = client.get("/api/log/key").text.strip()
        assert key.startswith("audit.example.com/govtrack+")
        assert client.get(f"/api/events/{eid(1)}/proof").status_code == 200
        note = client.get("/api/log/checkpoint").text
    assert (tmp_path / "keys" / "log.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tlog" / "checkpoint").read_text() == note
    assert (tmp_path / "tlog" / "tree" / "level-00.bin").stat().st_size == 32
    assert not (tmp_path / "data" / "log").exists()
    with TestClient(create_app(settings)) as again:  # the same key on the next start
        assert again.get("/api/log/key").text.strip() == key
