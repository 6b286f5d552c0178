"""Apply the numbered DDL files of ddl/clickhouse/ in order, once each, and record them.

Files are named `NNN_name.sql`; every statement in them is idempotent (`IF NOT EXISTS`), so a
crash between applying a file and recording it only means the file runs again next start.
Statements are unqualified: they run in the client's current database, which the store has
created and validated beforehand (so the same files serve any database, e.g. one per test).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from storage.clickhouse import queries as q
from storage.errors import TerminalStoreError

__all__ = ["DDL_DIR", "Migration", "apply_migrations", "load_migrations", "split_statements"]

DDL_DIR: Final = Path(__file__).resolve().parents[2] / "ddl" / "clickhouse"
_NAME: Final = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One DDL file: its number, file name, statements and content checksum."""

    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str


def split_statements(text: str) -> tuple[str, ...]:
    """The statements of a DDL file: `--` comment lines dropped, split at a `;` ending a line."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    parts = re.split(r";\s*(?:\n|$)", body)
    return tuple(p.strip() for p in parts if p.strip())


def load_migrations(directory: Path = DDL_DIR) -> tuple[Migration, ...]:
    """Every `NNN_name.sql` file of `directory` (not subdirectories), by number."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            continue
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        found.append(Migration(int(match.group(1)), path.name, split_statements(text), digest))
    return tuple(found)


def apply_migrations(client: Any, directory: Path = DDL_DIR) -> list[str]:
    """Apply the files not yet recorded; returns the names applied now. Driver errors propagate."""
    migrations = load_migrations(directory)
    if not migrations or migrations[0].version != 0:
        raise TerminalStoreError(f"{directory} must start with 000_schema_migrations.sql")
    for statement in migrations[0].statements:
        client.command(statement)
    applied = {int(v): str(c) for v, c in client.query(q.migrations_applied()).result_rows}
    done: list[str] = []
    for migration in migrations:
        known = applied.get(migration.version)
        if known is not None:
            if known != migration.checksum:
                raise TerminalStoreError(f"applied migration {migration.name} was edited afterwards")
            continue
        for statement in migration.statements:
            client.command(statement)
        sql, params = q.migration_record(migration.version, migration.name, migration.checksum)
        client.command(sql, parameters=params)
        done.append(migration.name)
    return done
