"""Shared fixtures: one `store` fixture parametrised over every engine (the ibis pattern).

The embedded ClickHouse engine allows one data path per process, so all ClickHouse tests share one
session-wide path and are isolated by database name instead of by directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storage.base import EventStore
from storage.factory import create_store

STORE_KINDS = ("parquet", "clickhouse")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded-ClickHouse data path of this test process."""
    return tmp_path_factory.mktemp("chdb")


def make_store(kind: str, tmp_path: Path, chdb_path: Path) -> EventStore:
    """A fresh, opened, empty store of `kind`."""
    if kind == "parquet":
        store = create_store(f"parquet://{tmp_path / 'parquet'}")
    else:
        store = create_store(f"chdb://{chdb_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    store.open()
    return store


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, chdb_path: Path) -> Iterator[EventStore]:
    """Every behaviour test runs once per engine through this fixture."""
    s = make_store(request.param, tmp_path, chdb_path)
    try:
        yield s
    finally:
        s.close()


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

    store = ClickHouseStore(f"chdb://{chdb_path}", database=f"t_{uuid.uuid4().hex[:12]}", single_writer=False)
    store.open()
    try:
        yield store
    finally:
        store.close()
