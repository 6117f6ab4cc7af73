"""The migration files themselves, without a database: named, numbered and loadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddas.db.migrate import MIGRATIONS_DIR, MigrationError, load_migrations


def test_the_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.sql.strip() for m in migrations)
    assert all(len(m.checksum) == 64 for m in migrations)
    assert MIGRATIONS_DIR.name == "migrations"


def test_the_first_migration_holds_the_delivery_lifecycle() -> None:
    sql = load_migrations()[0].sql
    for table in ("leveringen", "outbox", "processed_events"):
        assert f"CREATE TABLE {table} (" in sql
    for state in ("ontvangen", "gevalideerd", "afgekeurd", "rapport_gereed", "goedgekeurd",
                  "ingetrokken", "gepubliceerd", "vervangen"):  # fmt: skip
        assert f"'{state}'" in sql


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["1_short.sql"], "named NNNN_lowercase_name.sql"),
        (["0001_Upper.sql"], "named NNNN_lowercase_name.sql"),
        (["0001_a.sql", "0001_b.sql"], "share a version number"),
    ],
)
def test_badly_named_files_are_refused(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)
