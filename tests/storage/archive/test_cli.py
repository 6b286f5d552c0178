"""`govtrack archive`, `govtrack archive verify` and `govtrack export --to-url s3://` as subprocesses.

On both hot stores (each subprocess opens the store itself, as an operator's would): a dry run
moves nothing, a run moves January and February, verify exits 0 on the result and 1 naming the
file after a flipped byte; an export to an S3 URL (moto) writes files and manifest there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.archive.location import open_location
from tests.objectstores.servers import S3_KEY, ObjectStore
from tests.storage.archive.data import MAR, rows

REPO = Path(__file__).resolve().parents[3]
LOAD = (
    "import sys; from storage.factory import create_store; from tests.contract.events import table; "
    "from tests.storage.archive.data import rows; s = create_store(sys.argv[1]); s.open(); "
    "s.append(table(rows(60))); s.close()"
)


def govtrack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_archive_verify_and_export_from_the_command_line(tmp_path: Path, kind: str, s3: ObjectStore) -> None:
    store_url = f"parquet://{tmp_path / 'hot'}" if kind == "parquet" else f"chdb://{tmp_path / 'chdb'}"
    env = {
        **os.environ,
        "GOVTRACK_STORE_URL": store_url,
        "GOVTRACK_ARCHIVE_URL": str(tmp_path / "archive"),
        "GOVTRACK_S3_ENDPOINT_URL": s3.endpoint,
        "GOVTRACK_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_KEY,
    }
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD, store_url], cwd=REPO, capture_output=True, text=True, timeout=240
    )
    assert loaded.returncode == 0, loaded.stderr
    moved = len([r for r in rows(60) if r["timestamp"] < MAR])

    dry = govtrack("archive", "--before", "2024-03", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == f"would move {moved:,} events in 2 month(s) before 2024-03"
    assert not (tmp_path / "archive").exists()

    run = govtrack("archive", "--before", "2024-03", env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == f"moved {moved:,} events in 2 month(s) before 2024-03"
    assert "archive 2024-02: committed" in run.stderr

    verify = govtrack("archive", "verify", env=env)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("verified 2 file(s)")

    url = f"{s3.new_url()}/export"
    export = govtrack("export", "--from", "2024-01-15", "--to-url", url, env=env)
    assert export.returncode == 0, export.stderr
    want = len([r for r in rows(60) if r["timestamp"].isoformat() >= "2024-01-15"])
    assert export.stdout.splitlines()[0] == f"exported {want:,} events to {url}"
    assert "export: " in export.stderr  # progress lines (no terminal here)
    manifest = json.loads(open_location(url, s3.options).read_bytes("manifest.json"))
    assert manifest["rows"] == want

    victim = sorted((tmp_path / "archive" / "year=2024" / "month=02").glob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0x01
    victim.write_bytes(bytes(data))
    broken = govtrack("archive", "verify", "--month", "2024-02", "--json", env=env)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["problems"][0].startswith(f"year=2024/month=02/{victim.name}: sha256")
    assert f"archive verify failed: year=2024/month=02/{victim.name}" in broken.stderr
