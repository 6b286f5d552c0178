"""Error translation and retry against real failing endpoints, and migrations bookkeeping."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from storage.clickhouse.errors import translate
from storage.clickhouse.migrations import DDL_DIR, apply_migrations
from storage.clickhouse.store import ClickHouseStore
from storage.errors import TerminalStoreError, TransientStoreError
from tests.conftest import new_database


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_server_is_transient_after_retries() -> None:
    store = ClickHouseStore(f"http://default:@127.0.0.1:{closed_port()}/govtrack")
    with pytest.raises(TransientStoreError):
        store.open()
    check = store.health()
    assert not check.ok


def test_engine_error_is_terminal_with_code(chdb_path: Path) -> None:
    store = ClickHouseStore(f"chdb://{chdb_path}", database=new_database())
    store.open()
    try:
        with pytest.raises(DatabaseError) as info:
            store._conn().command("SELEC 1")
        err = translate(info.value)
        assert isinstance(err, TerminalStoreError)
        assert err.code == 62  # SYNTAX_ERROR
        assert store.health().ok
    finally:
        store.close()


def test_too_many_parts_code_is_transient() -> None:
    err = translate(
        DatabaseError("Code: 252. DB::Exception: Too many parts", code=252, name="TOO_MANY_PARTS")
    )
    assert isinstance(err, TransientStoreError)
    assert err.name == "TOO_MANY_PARTS"


def test_invalid_database_name_refused() -> None:
    with pytest.raises(TerminalStoreError):
        ClickHouseStore("chdb:///tmp/x", database="x; DROP TABLE y")


def test_database_from_dsn_path() -> None:
    assert ClickHouseStore("http://u:p@h:8123/audit").database == "audit"
    assert ClickHouseStore("http://u:p@h:8123").database == "govtrack"
    assert ClickHouseStore("http://h:8123/a?ddl=cluster").cluster


def test_migrations_recorded_and_idempotent(chdb_path: Path) -> None:
    database = new_database()
    first = ClickHouseStore(f"chdb://{chdb_path}", database=database)
    first.open()
    first.close()
    second = ClickHouseStore(f"chdb://{chdb_path}", database=database)
    second.open()
    try:
        client = second._conn()
        names = [
            row[0]
            for row in client.query("SELECT name FROM schema_migrations FINAL ORDER BY version").result_rows
        ]
        assert names == sorted(p.name for p in DDL_DIR.glob("*.sql"))
        assert int(client.command("SELECT count() FROM schema_migrations")) == len(names)
        assert apply_migrations(client) == []
    finally:
        second.close()


def test_edited_applied_migration_is_refused(chdb_path: Path, tmp_path: Path) -> None:
    ddl = tmp_path / "ddl"
    shutil.copytree(DDL_DIR, ddl)
    database = new_database()
    store = ClickHouseStore(f"chdb://{chdb_path}", database=database, ddl_dir=ddl)
    store.open()
    try:
        target = ddl / "002_sessions_rollup.sql"
        target.write_text(target.read_text() + "\n-- edited\n")
        with pytest.raises(TerminalStoreError):
            apply_migrations(store._conn(), ddl)
    finally:
        store.close()
