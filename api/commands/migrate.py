"""`govtrack migrate`: bring the store of GOVTRACK_STORE_URL up to date and say what that took.

ClickHouse: apply the numbered DDL files of ddl/clickhouse/ (cluster/ with `?ddl=cluster`) not yet
recorded in schema_migrations, and list which were applied now and which were already there.
Parquet: there is no DDL; opening the store creates its root, recovers from an interrupted commit
(orphan files dropped) and rebuilds the id index, and the report says what it found.
Servers do the same at start; this command lets an operator do it first, and see it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from api.commands.common import EXIT_OK, exit_codes, open_tiered, paragraph
from api.settings import Settings

if TYPE_CHECKING:
    from storage.base import EventStore

__all__ = ["add_parser", "report", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `govtrack migrate`."""
    commands.add_parser(
        "migrate",
        help="apply the ClickHouse DDL / open the Parquet store, and report",
        description=paragraph(
            "Bring the store of GOVTRACK_STORE_URL up to date: apply the ClickHouse DDL files "
            "not yet applied (each recorded with its checksum), or open the Parquet store (root, "
            "manifest, id index), and report what was done. Idempotent: run it as often as you like."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_codes(
            "failure: the store could not be opened, or an applied DDL file was edited afterwards"
        ),
        allow_abbrev=False,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Open (which migrates) and print the report."""
    store = open_tiered(settings)  # as a server opens it, so its log and archive too
    try:
        print(report(store.hot))
    finally:
        store.close()
    return EXIT_OK


def report(store: EventStore) -> str:
    """What the open store applied, or found."""
    applied_now: tuple[str, ...] | None = getattr(store, "migrations_applied", None)
    if applied_now is None:
        data = store.health().data
        return "\n".join(
            [
                f"parquet store at {getattr(store, 'root', '?')}: no DDL to apply; opened and checked",
                f"files: {data.get('files', 0)}, events: {data.get('rows', 0):,}, "
                f"manifest generation: {data.get('generation', 0)}",
            ]
        )
    from storage.clickhouse.migrations import DDL_DIR, load_migrations  # local mode never loads it

    cluster = bool(getattr(store, "cluster", False))
    names = [m.name for m in load_migrations(DDL_DIR / "cluster" if cluster else DDL_DIR)]
    database = getattr(store, "database", "?")
    lines = [f"clickhouse database {database}{' (cluster DDL)' if cluster else ''}: {len(names)} DDL files"]
    lines += [f"  {name}: {'applied now' if name in applied_now else 'already applied'}" for name in names]
    lines.append(f"applied now: {len(applied_now)}, already applied: {len(names) - len(applied_now)}")
    return "\n".join(lines)
