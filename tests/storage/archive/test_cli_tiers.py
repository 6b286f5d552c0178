"""Every `govtrack` job opens its store as the server does, archive tier and log settings included.

Subprocesses on both hot stores, with GOVTRACK_LOG_DIR, _LOG_KEY_FILE and _LOG_ORIGIN set as an
operator sets them: the jobs must keep the one log those name (no second key beside the data),
count archived months (`stats` answers as `/api/stats` does), deduplicate a resent demo against
the archive, open a store whose every month is archived, and write `log/` into every export, so
that `govtrack verify` passes on exports spanning hot and archived months, local and on S3.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from storage.archive.location import open_location
from storage.log.note import load_or_create_signer
from tests.objectstores.servers import S3_KEY, ObjectStore
from tests.storage.archive.test_cli import govtrack  # `python -m api.cli ARGS` in the repository

REPO = Path(__file__).resolve().parents[3]
ORIGIN = "audit.example/govtrack"
EVENTS = 400
#: `--days 40 --end 2024-03-20`: events from 2024-02-09 to 2024-03-19, February and March.
DEMO = ("demo", "--events", str(EVENTS), "--days", "40", "--end", "2024-03-20", "--seed", "3")


def _env(kind: str, tmp_path: Path, s3: ObjectStore) -> dict[str, str]:
    store_url = f"parquet://{tmp_path / 'hot'}" if kind == "parquet" else f"chdb://{tmp_path / 'chdb'}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOVTRACK_")}
    return base | {
        "GOVTRACK_STORE_URL": store_url,
        "GOVTRACK_ARCHIVE_URL": str(tmp_path / "archive"),
        "GOVTRACK_SPOOL_DIR": str(tmp_path / "spool"),
        "GOVTRACK_LOG_DIR": str(tmp_path / "log"),
        "GOVTRACK_LOG_KEY_FILE": str(tmp_path / "keys" / "log.key"),
        "GOVTRACK_LOG_ORIGIN": ORIGIN,
        "GOVTRACK_S3_ENDPOINT_URL": s3.endpoint,
        "GOVTRACK_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_KEY,
    }


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _total(env: dict[str, str]) -> int:
    return int(json.loads(_ok(govtrack("stats", "--json", env=env)))["total_events"])


def _download(url: str, s3: ObjectStore, target: Path) -> Path:
    location = open_location(url, s3.options)
    for rel in location.list_files():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(location.read_bytes(rel))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_jobs_open_the_store_as_the_server_does(tmp_path: Path, kind: str, s3: ObjectStore) -> None:
    env = _env(kind, tmp_path, s3)
    loaded = _ok(govtrack(*DEMO, env=env))
    assert loaded.splitlines()[-1].endswith(f"stored {EVENTS:,}, duplicates 0")
    signing_keys = sorted(p for p in tmp_path.rglob("*.key") if p.is_file())
    assert signing_keys == [tmp_path / "keys" / "log.key"]  # no second key beside the data
    assert not list(tmp_path.rglob("signing.key"))
    assert (tmp_path / "log" / "checkpoint").read_text().startswith(f"{ORIGIN}\n")
    vkey = load_or_create_signer(tmp_path / "keys" / "log.key", ORIGIN, create=False)[0].verifier.vkey()

    _ok(govtrack("archive", "--before", "2024-03", env=env))  # February archived, March hot
    assert _total(env) == EVENTS  # archived months count, as in GET /api/stats
    resent = _ok(govtrack(*DEMO, env=env))
    assert resent.splitlines()[-1].endswith(f"stored 0, duplicates {EVENTS:,}")  # none doubled

    whole = tmp_path / "whole"
    _ok(govtrack("export", "--to-url", str(whole), env=env))
    checked = _ok(govtrack("verify", str(whole), "--key", vkey, env=env))
    assert f"govtrack verify: {EVENTS} events checked" in checked

    url = f"{s3.new_url()}/export"
    exported = govtrack("export", "--from", "2024-02-20", "--to-url", url, env=env)
    assert "export: " in _ok(exported) + exported.stderr  # progress lines (no terminal here)
    local = _download(url, s3, tmp_path / "from-s3")
    assert (local / "log" / "checkpoint").is_file()
    tree = str(tmp_path / "log" / "tree")
    partial = govtrack("verify", str(local), "--key", vkey, "--partial", "--tree", tree, env=env)
    assert "OK (partial)" in _ok(partial)

    _ok(govtrack("archive", "--before", "2024-04", env=env))  # every month archived: the hot store is empty
    assert _total(env) == EVENTS
    migrated = govtrack("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr


@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_a_store_that_cannot_open_names_a_server_only_when_one_may_hold_it(
    tmp_path: Path, kind: str, s3: ObjectStore
) -> None:
    env = _env(kind, tmp_path, s3)
    month = tmp_path / "archive" / "year=2024" / "month=02"
    month.mkdir(parents=True)
    (month / "_manifest-g000001.json").write_text("{not json")  # an archive that cannot be trusted
    failed = govtrack("stats", env=env)
    assert failed.returncode == 1
    assert "cannot open" in failed.stderr
    assert "_manifest-g000001.json" in failed.stderr
    assert "server" not in failed.stderr
