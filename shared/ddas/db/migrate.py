"""Versioned schema migrations: files `NNNN_name.sql` in ddas/db/migrations/, applied in order,
each in its own transaction, and recorded with a checksum in `<schema>.schema_migrations`.

Every service runs this at start-up, so it must be cheap and safe when nothing is to do and when
several processes start at once: a PostgreSQL advisory lock per schema makes concurrent runners
take turns, applied files are skipped, and an applied file that was edited afterwards is refused
(a change to the schema is a new file). Run by hand: `python -m ddas.db.migrate [--schema S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ddas.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# First key of the two-key pg_advisory_lock(int, int): a namespace for this runner, so that its
# lock never collides with an advisory lock that application code takes on its own numbers.
_LOCK_NAMESPACE = 0x0DDA5

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migrations cannot be applied: a bad file, an edited file, or SQL that failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; refuses stray .sql names and duplicate versions."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        migration = Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8"))
        if migration.version in found:
            raise MigrationError(
                f"{path.name} and {found[migration.version].filename} share a version number"
            )
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


async def migrate(
    conn: asyncpg.Connection,
    *,
    schema: str = "public",
    directory: Path = MIGRATIONS_DIR,
) -> list[Migration]:
    """Bring `schema` up to date (creating it if need be); the migrations this call applied.

    Versions recorded in the database but unknown here are left alone: a replica of an older
    release may start after a newer one migrated, and migrations only ever add.
    """
    if not _SCHEMA_NAME.match(schema):
        raise MigrationError(f"schema name {schema!r}: use lowercase letters, digits and _")
    if conn.is_in_transaction():
        raise MigrationError("migrations run outside a transaction: each file gets its own")
    migrations = load_migrations(directory)

    await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, schema)
    try:
        previous_path = await conn.fetchval("SELECT current_setting('search_path')")
        # Inside the lock: two runners racing on CREATE SCHEMA IF NOT EXISTS can both fail.
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute("SELECT set_config('search_path', $1, false)", f'"{schema}"')
        try:
            return await _apply_pending(conn, schema, migrations)
        finally:
            await conn.execute("SELECT set_config('search_path', $1, false)", previous_path)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, schema)


async def _apply_pending(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[Migration]:
    await conn.execute(_BOOKKEEPING)
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    recorded = {row["version"]: row["checksum"] for row in rows}
    applied: list[Migration] = []
    for migration in migrations:
        checksum = recorded.get(migration.version)
        if checksum is not None:
            if checksum != migration.checksum:
                raise MigrationError(
                    f"{migration.filename} was edited after it was applied to schema {schema}: "
                    "put the change in a new migration file"
                )
            continue
        try:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"{migration.filename} failed: {exc}") from exc
        applied.append(migration)
    return applied


async def migrate_database(settings: DatabaseSettings | None = None) -> list[Migration]:
    """What a service calls at start-up: migrate the settings' schema of the settings' database."""
    settings = settings or DatabaseSettings()
    conn = await asyncpg.connect(settings.url)
    try:
        return await migrate(conn, schema=settings.search_path)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddas.db.migrate", description=__doc__)
    parser.add_argument("--schema", help="schema to migrate (default: DATABASE_SEARCH_PATH)")
    parser.add_argument("--database-url", help="default: DATABASE_URL")
    args = parser.parse_args(argv)
    overrides = {}
    if args.database_url:
        overrides["url"] = args.database_url
    if args.schema:
        overrides["search_path"] = args.schema
    settings = DatabaseSettings(**overrides)
    try:
        applied = asyncio.run(migrate_database(settings))
    except (MigrationError, OSError, asyncpg.PostgresError) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    for migration in applied:
        print(f"applied {migration.filename}")
    if not applied:
        print(f"schema {settings.search_path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
