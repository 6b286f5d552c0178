"""`govtrack keys new|secret`: a key admitted by the entry it prints, with exactly its scopes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import parse_keys_file
from api.cli import main
from api.settings import Settings
from storage.base import EventStore
from tests.conftest import FIXTURES

LINE = re.compile(
    r"^key: (?P<key>\S+)\nGOVTRACK_API_KEYS entry: (?P<entry>\S+)\nkeys-file line: (?P<line>.+)\n$"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def new_key(capsys: pytest.CaptureFixture[str], scopes: str) -> dict[str, str]:
    code, out, err = run(capsys, "keys", "new", "--scopes", scopes)
    assert code == 0, err
    found = LINE.match(out)
    assert found, out
    return found.groupdict()


def test_new_key_entry_admits_the_key_with_its_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    made = new_key(capsys, "ingest,read")
    assert made["key"] not in made["entry"] + made["line"]  # only the digest is configured
    assert re.fullmatch(r"sha256:[0-9a-f]{64}:ingest\+read", made["entry"])
    for ring in (Settings(api_keys=made["entry"]).api_keys, parse_keys_file(made["line"]).entries):
        assert len(ring) == 1
        assert set(ring[0].scopes) == {"ingest", "read"}
    assert new_key(capsys, "read")["key"] != made["key"]


def test_new_key_works_against_the_real_app(
    capsys: pytest.CaptureFixture[str], store: EventStore, tmp_path: Path
) -> None:
    ingest, read = new_key(capsys, "ingest"), new_key(capsys, "read+admin")
    settings = Settings(
        store_url=f"parquet://{tmp_path / 'unused'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        api_keys=f"{ingest['entry']},{read['entry']}",
    )
    body = (FIXTURES / "addin_batch_pascal.json").read_bytes()
    json_type = {"Content-Type": "application/json"}
    with TestClient(create_app(settings, store=store)) as client:
        assert client.post("/api/events", content=body, headers=json_type).status_code == 401
        posted = client.post("/api/events", content=body, headers={**json_type, "X-API-Key": ingest["key"]})
        assert posted.status_code == 200, posted.text
        assert client.get("/api/stats", headers={"X-API-Key": ingest["key"]}).status_code == 403
        stats = client.get("/api/stats", headers={"X-API-Key": read["key"]})
        assert stats.json()["total_events"] == 25


@pytest.mark.parametrize(
    "argv",
    [
        ("keys", "new"),
        ("keys", "new", "--scopes", "ingest,superuser"),
        ("keys", "new", "--scopes", ","),
        ("keys",),
        ("keys", "rotate"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert "usage:" in err


def test_help_and_secret(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVTRACK_MAX_BATCH_EVENTS", "not a number")  # keys never read settings
    code, out, _ = run(capsys, "keys", "new", "--help")
    assert code == 0
    assert "--scopes" in out
    assert "govtrack keys new --scopes ingest,read" in out
    first, second = run(capsys, "keys", "secret"), run(capsys, "keys", "secret")
    assert first[0] == second[0] == 0
    assert re.fullmatch(r"[0-9a-f]{64}\n", first[1])
    assert first[1] != second[1]
