"""The DDL in ddl/clickhouse/: cluster statements parse in the real engine and define the same columns.

Parsing uses the engine's own `formatQuery` (embedded ClickHouse), so a statement that would fail
on a cluster fails here, without a cluster. Column blocks are compared on the formatted text, so
spacing differences do not matter but any type, codec or index difference does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
import pytest

from storage.clickhouse.migrations import DDL_DIR, load_migrations
from storage.clickhouse.store import ClickHouseStore
from storage.schema import EVENT_SCHEMA, UTC_MICROS
from tests.conftest import new_database

CLUSTER_DIR = DDL_DIR / "cluster"


@pytest.fixture(scope="module")
def engine(chdb_path: Path) -> Iterator[Any]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    try:
        yield client
    finally:
        client.close()


def formatted(engine: Any, statement: str) -> str:
    rows = engine.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows
    return str(rows[0][0])


def statements(directory: Path) -> list[str]:
    return [s for m in load_migrations(directory) for s in m.statements]


def tables(engine: Any, directory: Path) -> dict[str, str]:
    """Table name -> formatted column block, for every CREATE TABLE with a column list."""
    out: dict[str, str] = {}
    for statement in statements(directory):
        text = formatted(engine, statement)
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+).*?\n\(\n(.*?)\n\)\nENGINE", text, re.S)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def test_both_variants_have_the_same_files() -> None:
    single = [m.name for m in load_migrations(DDL_DIR)]
    cluster = [m.name for m in load_migrations(CLUSTER_DIR)]
    assert single == cluster
    assert single[0] == "000_schema_migrations.sql"


@pytest.mark.parametrize("directory", [DDL_DIR, CLUSTER_DIR], ids=["single", "cluster"])
def test_every_statement_parses(engine: Any, directory: Path) -> None:
    found = statements(directory)
    assert found
    for statement in found:
        text = formatted(engine, statement)
        # DDL, or a backfill of a new derived table from existing rows (INSERT ... SELECT).
        assert text.startswith(("CREATE", "ALTER", "DROP")) or re.match(
            r"INSERT INTO \w+ .*SELECT", text, re.S
        ), text


def test_cluster_statements_are_on_cluster_and_replicated(engine: Any) -> None:
    for statement in statements(CLUSTER_DIR):
        text = formatted(engine, statement)
        assert "ON CLUSTER `{cluster}`" in text
        if text.startswith("ALTER"):  # changes the replicated tables; the Distributed one only gains columns
            assert re.match(r"ALTER TABLE \w+_local ON CLUSTER", text) or _distributed_add_column(text), text
            continue
        if text.startswith("DROP"):
            continue
        assert (
            re.search(r"ENGINE = (Replicated\w+MergeTree|Distributed)\(", text) or "MATERIALIZED VIEW" in text
        )


def _distributed_add_column(text: str) -> bool:
    """An ADD COLUMN on a Distributed table (its own column list must follow its local table's)."""
    return bool(
        re.match(
            r"ALTER TABLE (?!\w+_local )\w+ ON CLUSTER `\{cluster\}`\s*\(?ADD COLUMN IF NOT EXISTS", text
        )
    )


def test_cluster_alters_match_the_single_node_alters(engine: Any) -> None:
    """Column changes after the CREATEs (codecs, ...) keep both variants' columns the same."""

    def alters(directory: Path) -> list[str]:
        found = [formatted(engine, s) for s in statements(directory)]
        return [t for t in found if t.startswith("ALTER") and not _distributed_add_column(t)]

    cluster = [
        re.sub(r"^ALTER TABLE (\w+)_local ON CLUSTER `\{cluster\}`", r"ALTER TABLE \1", t)
        for t in alters(CLUSTER_DIR)
    ]
    assert cluster == alters(DDL_DIR)


def test_cluster_drops_match_the_single_node_drops(engine: Any) -> None:
    """What 006 retires goes on a cluster too: each Distributed table and its local table."""

    def drops(directory: Path) -> list[tuple[str, str]]:
        found = [formatted(engine, s) for s in statements(directory)]
        return [
            (m.group(1), m.group(2))
            for t in found
            if (m := re.match(r"DROP (VIEW|TABLE) IF EXISTS (\w+)", t))
        ]

    single = drops(DDL_DIR)
    assert single
    expected = []
    for kind, name in single:
        expected.append((kind, name))
        if kind == "TABLE":
            expected.append((kind, f"{name}_local"))
    assert drops(CLUSTER_DIR) == expected


def test_the_distributed_table_gains_every_column_its_local_table_gains(engine: Any) -> None:
    """Columns added to audit_events_local after its CREATE are added to the Distributed table too."""
    found = [formatted(engine, s) for s in statements(CLUSTER_DIR)]
    added = r"ALTER TABLE {} ON CLUSTER `\{{cluster\}}`\s*\(?ADD COLUMN IF NOT EXISTS `?(\w+)`? "
    local = [m.group(1) for t in found if (m := re.match(added.format("audit_events_local"), t))]
    distributed = [m.group(1) for t in found if (m := re.match(added.format("audit_events"), t))]
    assert local == ["session_seq", "leaf_index", "leaf_hash"]
    assert distributed == local


def test_cluster_tables_define_the_same_columns(engine: Any) -> None:
    single = tables(engine, DDL_DIR)
    cluster = tables(engine, CLUSTER_DIR)
    assert set(single) == {
        "schema_migrations",
        "audit_events",
        "sessions_rollup",
        "event_index",
        "event_counts",
    }
    for name, block in single.items():
        local = cluster.get(f"{name}_local", cluster.get(name))
        assert local == block, name
    text = "\n".join(formatted(engine, s) for s in statements(CLUSTER_DIR))
    for name in ("audit_events", "sessions_rollup", "event_index", "event_counts"):
        assert f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER `{{cluster}}` AS {name}_local" in text
        assert f"Distributed('{{cluster}}', currentDatabase(), {name}_local" in text


def arrow_type(ch_type: str) -> tuple[pa.DataType, bool]:
    """Arrow type and nullability of a ClickHouse column type, as the store reads it."""
    inner = re.sub(r"^LowCardinality\((.*)\)$", r"\1", ch_type)
    nullable = inner.startswith("Nullable(")
    inner = re.sub(r"^Nullable\((.*)\)$", r"\1", inner)
    known: dict[str, pa.DataType] = {
        "String": pa.string(),
        "DateTime64(6, 'UTC')": UTC_MICROS,
        "Map(String, String)": pa.map_(pa.string(), pa.string()),
        "Int64": pa.int64(),
        "FixedString(32)": pa.binary(32),
    }
    return known[inner], nullable


def test_single_node_table_matches_schema_py(chdb_path: Path) -> None:
    store = ClickHouseStore(f"chdb://{chdb_path}", database=new_database())
    store.open()
    try:
        rows = (
            store._conn()
            .query(
                "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                "AND table = 'audit_events' AND default_kind != 'MATERIALIZED' ORDER BY position"
            )
            .result_rows
        )
    finally:
        store.close()
    assert [r[0] for r in rows] == EVENT_SCHEMA.names
    for (name, ch_type), field in zip(rows, EVENT_SCHEMA, strict=True):
        arrow, nullable = arrow_type(ch_type)
        assert arrow == field.type, name
        assert nullable == field.nullable, name
