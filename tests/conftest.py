"""Shared fixtures: one `store` fixture parametrised over every engine (the ibis pattern).

The embedded ClickHouse engine allows one data path per process, so all ClickHouse tests share one
session-wide path and are isolated by database name instead of by directory. A fresh database
costs every migration's DDL (~0.8 s on a quiet 2-core machine, ~700 tests), so a test's database
is emptied afterwards and handed to the next test: the store still opens it as a restart would
(migrations found applied), with no event, no transparency-log file and the same schema; one whose
schema a test changed is dropped instead.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from fastapi.testclient import TestClient

from storage.base import EventStore
from storage.factory import create_store

STORE_KINDS = ("parquet", "clickhouse")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded-ClickHouse data path of this test process."""
    return tmp_path_factory.mktemp("chdb")


def new_database() -> str:
    """A database name no test of this process has used."""
    return f"t_{uuid.uuid4().hex[:12]}"


class DatabasePool:
    """Emptied, migrated ClickHouse databases of this test process, for the next test to reuse."""

    def __init__(self, chdb_path: Path) -> None:
        self.chdb_path = chdb_path
        self.free: list[str] = []
        self.schema: list[tuple[str, str]] | None = None  # as the migrations leave it, the name taken out
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = clickhouse_connect.get_client(dsn=f"chdb://{self.chdb_path}")
        return self._client

    def close(self) -> None:
        """Close the pool's own client."""
        if self._client is not None:
            self._client.close()

    def take(self) -> str:
        """A database name: an emptied one when there is one, else a new one."""
        return self.free.pop() if self.free else new_database()

    def opened(self, database: str) -> None:
        """Called once the store opened `database`: the first one's schema is the reference."""
        if self.schema is None:
            self.schema = self._schema(database)

    def _schema(self, database: str) -> list[tuple[str, str]]:
        rows = self.client.query(
            "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name",
            parameters={"db": database},
        ).result_rows
        return [(str(name), str(ddl).replace(database, "{db}")) for name, ddl in rows]

    def give_back(self, database: str) -> None:
        """Empty `database` for the next test, or drop it when a test changed its schema."""
        schema = self._schema(database)
        shutil.rmtree(self.chdb_path / "log" / database, ignore_errors=True)
        if schema != self.schema:
            self.client.command("DROP DATABASE IF EXISTS {db:Identifier} SYNC", parameters={"db": database})
            return
        for name, _ in schema:
            if name != "schema_migrations":
                self.client.command(
                    "TRUNCATE TABLE {db:Identifier}.{t:Identifier}", parameters={"db": database, "t": name}
                )
        self.free.append(database)


@pytest.fixture(scope="session")
def database_pool(chdb_path: Path) -> Iterator[DatabasePool]:
    """The reusable ClickHouse databases of this test process."""
    pool = DatabasePool(chdb_path)
    yield pool
    pool.close()


def make_store(kind: str, tmp_path: Path, chdb_path: Path, database: str | None = None) -> EventStore:
    """A fresh, opened, empty store of `kind` (ClickHouse: in `database`, else a new one)."""
    if kind == "parquet":
        store = create_store(f"parquet://{tmp_path / 'parquet'}")
    else:
        store = create_store(f"chdb://{chdb_path}", database=database or new_database())
    store.open()
    return store


@pytest.fixture(params=STORE_KINDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, chdb_path: Path, database_pool: DatabasePool
) -> Iterator[EventStore]:
    """Every behaviour test runs once per engine through this fixture."""
    database = database_pool.take() if request.param == "clickhouse" else None
    s = make_store(request.param, tmp_path, chdb_path, database)
    if database is not None:
        database_pool.opened(database)
    try:
        yield s
    finally:
        s.close()
        if database is not None:
            database_pool.give_back(database)


@pytest.fixture
def client(store: EventStore, tmp_path: Path) -> Iterator[TestClient]:
    """The HTTP app over the parametrised store, with its lifespan running."""
    from tests.api.readkit import client_with

    with client_with(store, tmp_path) as test_client:
        yield test_client


@pytest.fixture
def shared_chdb(chdb_path: Path) -> Iterator[EventStore]:
    """An embedded ClickHouse store as one of several writers (a server's mode): it keeps no log."""
    from storage.clickhouse.store import ClickHouseStore

    store = ClickHouseStore(f"chdb://{chdb_path}", database=new_database(), single_writer=False)
    store.open()
    try:
        yield store
    finally:
        store.close()
