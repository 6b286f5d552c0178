"""The `govtrack` jobs as a person runs them: subprocesses, their output and their exit codes.

Each store-touching command runs on both stores (a subprocess has its own embedded-ClickHouse
path). Expected figures come from polars over the events the demo generator makes for the same
arguments, never from the store under test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Final

import polars as pl
import pytest

from analytics.demo import generate_events
from tests.e2e.server import Server, ServerDirs

ROOT: Final = Path(__file__).parents[1]
JOBS: Final = ("demo", "export", "stats", "migrate")
END: Final = "2025-03-10"
DEMO_START: Final = dt.datetime(2025, 3, 7, tzinfo=dt.UTC)  # midnight of END minus --days 3


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`python -m api.cli ARGS` with only the given GOVTRACK_* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GOVTRACK_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def store_env(kind: str, root: Path) -> dict[str, str]:
    url = f"parquet://{root / 'parquet'}" if kind == "parquet" else f"chdb://{root / 'chdb'}"
    return {
        "GOVTRACK_STORE_URL": url,
        "GOVTRACK_ARCHIVE_URL": str(root / "archive"),
        "GOVTRACK_SPOOL_DIR": str(root / "spool"),
    }


def demo_frame(n: int, seed: int) -> pl.DataFrame:
    """What `govtrack demo --events n --days 3 --seed seed --end END` generates (one chunk)."""
    table = generate_events(n, seed=seed, start=DEMO_START, days=3)
    return pl.DataFrame(pl.from_arrow(table.drop_columns(["attributes"])))


@pytest.mark.parametrize("job", JOBS)
def test_help_states_the_exit_codes(job: str) -> None:
    done = run(job, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: govtrack {job}" in done.stdout
    assert "exit codes:\n  0  done\n  1  " in done.stdout
    assert "  2  usage error" in done.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("demo",), "--events"),
        (("demo", "--events", "0"), "at least 1"),
        (("demo", "--events", "10", "--url", "http://x", "--store", "parquet:///x"), "not allowed with"),
        (("stats", "--from", "yesterday"), "not an ISO-8601 date"),
        (("stats", "--top", "0"), "--top"),
        (("export", "--to", "2025-13-01"), "not an ISO-8601 date"),
        (("migrate", "--force"), "unrecognized arguments"),
        (("nonsense",), "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], complaint: str) -> None:
    done = run(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage: govtrack" in done.stderr
    assert complaint in done.stderr
    assert done.stdout == ""


def test_invalid_settings_exit_2(tmp_path: Path) -> None:
    done = run("stats", env=store_env("parquet", tmp_path) | {"GOVTRACK_MAX_BATCH_EVENTS": "lots"})
    assert done.returncode == 2
    assert "invalid settings" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_migrate_reports_what_it_applied(kind: str, tmp_path: Path) -> None:
    env = store_env(kind, tmp_path)
    first = run("migrate", env=env)
    again = run("migrate", env=env)
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    if kind == "parquet":
        assert "no DDL to apply" in first.stdout
        assert "files: 0, events: 0" in first.stdout
        assert (tmp_path / "parquet").is_dir()
        return
    ddl = sorted(p.name for p in (ROOT / "ddl" / "clickhouse").glob("[0-9][0-9][0-9]_*.sql"))
    assert len(ddl) >= 7
    assert f"applied now: {len(ddl)}, already applied: 0" in first.stdout
    assert f"applied now: 0, already applied: {len(ddl)}" in again.stdout
    for name in ddl:
        assert f"  {name}: applied now" in first.stdout
        assert f"  {name}: already applied" in again.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_demo_stats_export_on_a_store(kind: str, tmp_path: Path) -> None:
    env = store_env(kind, tmp_path)
    demo = run("demo", "--events", "3000", "--days", "3", "--seed", "5", "--end", END, env=env)
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    assert lines[0] == f"demo: 3,000/3,000 events (100%), {lines[0].split(', ')[1]}"  # one append, one line
    assert lines[-1].endswith("stored 3,000, duplicates 0")
    assert "\r" not in demo.stdout  # no bar when stdout is not a terminal
    df = demo_frame(3000, 5)

    as_json = run("stats", "--json", "--top", "3", env=env)
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["total_events"] == 3000
    assert figures["unique_users"] == df["user_name"].n_unique()
    assert figures["unique_sessions"] == df["session_id"].n_unique()
    by_type = df.group_by("event_type").len("count").sort(["count", "event_type"], descending=[True, False])
    assert figures["by_event_type"] == by_type.to_dicts()
    assert [u["count"] for u in figures["top_users"]] == sorted(
        df.group_by("user_name").len()["len"].to_list(), reverse=True
    )[:3]

    start, end = dt.datetime(2025, 3, 8, tzinfo=dt.UTC), dt.datetime(2025, 3, 9, 12, tzinfo=dt.UTC)
    window = df.filter(pl.col("timestamp").is_between(start, end, closed="left"))
    table = run("stats", "--from", "2025-03-08", "--to", "2025-03-09T12:00:00Z", env=env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["events", f"{window.height:,}"]
    assert "event type" in table.stdout
    assert "top workbooks" in table.stdout

    target = tmp_path / "exports" / "one"
    export = run(
        "export", "--from", "2025-03-08", "--to", "2025-03-09T12:00:00Z", "--to-url", str(target), env=env
    )
    assert export.returncode == 0, export.stderr
    assert export.stdout.splitlines()[0] == f"exported {window.height:,} events to {target}"
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["rows"] == window.height
    for entry in manifest["files"]:
        assert hashlib.sha256((target / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    exported = pl.read_parquet(target / "**" / "*.parquet", hive_partitioning=False)
    assert sorted(exported["event_id"].to_list()) == sorted(window["event_id"].to_list())

    refused = run("export", "--to-url", str(target), env=env)
    assert refused.returncode == 1
    assert "exports never share one" in refused.stderr

    whole = run("export", "--json", env=env)  # default destination: a fresh folder beside the archive
    assert whole.returncode == 0, whole.stderr
    described = json.loads(whole.stdout)
    assert described["rows"] == 3000
    assert Path(described["destination"]).parent == tmp_path / "exports"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_demo_through_the_http_api(kind: str, tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path / "server")
    ingest_key, read_key = "cli-ingest-key-0123456789", "cli-read-key-0123456789"
    server = Server(dirs, dirs.url_for(kind), GOVTRACK_API_KEYS=f"{ingest_key}:ingest,{read_key}:read")
    try:
        server.wait_ready()
        args = ("demo", "--events", "2500", "--days", "3", "--seed", "8", "--end", END, "--url", server.base)
        denied = run(*args)
        assert denied.returncode == 1
        assert "401 unauthorized" in denied.stderr
        sent = run(*args, env={"GOVTRACK_API_KEY": ingest_key})
        assert sent.returncode == 0, sent.stderr
        progress = [line.split(" (")[0] for line in sent.stdout.splitlines()[:-1]]
        assert progress == [
            "demo: 1,000/2,500 events",
            "demo: 2,000/2,500 events",
            "demo: 2,500/2,500 events",
        ]
        assert sent.stdout.splitlines()[-1].endswith("accepted 2,500, queued 0")
        # acknowledged again, stored once (the stats below)
        resent = run(*args, env={"GOVTRACK_API_KEY": ingest_key})
        assert resent.returncode == 0, resent.stderr
        assert resent.stdout.splitlines()[-1].endswith("accepted 2,500, queued 0")

        stats = run("stats", "--json", "--url", server.base, env={"GOVTRACK_API_KEY": read_key})
        assert stats.returncode == 0, stats.stderr
        df = demo_frame(2500, 8)
        figures = json.loads(stats.stdout)
        assert figures["total_events"] == 2500
        assert figures["unique_workbooks"] == df["workbook_name"].drop_nulls().n_unique()

        locked = run("stats", env={"GOVTRACK_STORE_URL": dirs.url_for(kind)})  # the server holds its store
        assert locked.returncode == 1
        assert "use --url" in locked.stderr
    finally:
        server.stop()
    unreachable = run("stats", "--url", server.base)
    assert unreachable.returncode == 1
    assert f"cannot reach {server.base}" in unreachable.stderr


def test_demo_shows_a_bar_on_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GOVTRACK_")}
    environ |= store_env("parquet", tmp_path) | {"COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "demo", "--events", "120000", "--end", END],
        stdout=follower,
        stderr=subprocess.STDOUT,
        env=environ,
        cwd=ROOT,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    text = screen.decode()
    assert "\r" in text  # the bar redraws in place
    assert "120k/120k" in text
    assert "100%|" in text
    assert "(10%)" not in text  # and no plain progress lines
    assert text.rstrip().splitlines()[-1].startswith("demo: 120,000 events in")
