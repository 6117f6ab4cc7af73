"""asyncpg and the migrations on the real PostgreSQL: a round trip through the first migration's
tables, migrations that are a no-op the second time, safe from two processes at once, and
refused when an applied file was edited."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from ddas.db import connect, create_pool
from ddas.db.migrate import MigrationError, load_migrations, migrate
from ddas.settings import DatabaseSettings

pytestmark = pytest.mark.integration


async def _insert_levering(conn: asyncpg.Connection, **overrides: object) -> uuid.UUID:
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "soort": "shv",
        "code_gegevensleverancier": "LEV01",
        "organisatie": "12345678",
        "startdatum_levering": dt.date(2025, 1, 1),
        "einddatum_levering": dt.date(2025, 6, 30),
        "content_hash": uuid.uuid4().hex,
        **overrides,
    }
    columns = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO leveringen ({columns}) VALUES ({params})", *row.values())
    return row["id"]  # type: ignore[return-value]


async def test_asyncpg_round_trip_through_the_delivery_tables(db: asyncpg.Connection) -> None:
    levering = await _insert_levering(db)
    row = await db.fetchrow("SELECT soort, state, startdatum_levering FROM leveringen")
    assert dict(row) == {
        "soort": "shv",
        "state": "ontvangen",
        "startdatum_levering": dt.date(2025, 1, 1),
    }

    # A transition is one guarded update: the second attempt finds the state moved on.
    guarded = "UPDATE leveringen SET state = $2 WHERE id = $1 AND state = 'ontvangen'"
    assert await db.execute(guarded, levering, "gevalideerd") == "UPDATE 1"
    assert await db.execute(guarded, levering, "afgekeurd") == "UPDATE 0"

    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE leveringen SET state = 'kwijt' WHERE id = $1", levering)
    with pytest.raises(asyncpg.UniqueViolationError):
        await _insert_levering(
            db, content_hash=await db.fetchval("SELECT content_hash FROM leveringen")
        )

    # The outbox row and the processed-event row of the transactional patterns.
    event = uuid.uuid4()
    async with db.transaction():
        await db.execute(
            "INSERT INTO outbox (event_id, topic, message_key, payload) VALUES ($1, $2, $3, $4)",
            event, "ddas.levering.gevalideerd.v1", str(levering), '{"levering": "x"}',
        )  # fmt: skip
        await db.execute(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)", "report", event
        )
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)", "report", event
        )
    pending = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert pending == 1


async def test_each_test_has_a_schema_of_its_own(db_settings: DatabaseSettings) -> None:
    pool = await create_pool(db_settings)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_schema()") == db_settings.search_path
            assert await conn.fetchval("SELECT count(*) FROM leveringen") == 0
    finally:
        await pool.close()


async def test_migrations_applied_twice_are_a_no_op(db_settings: DatabaseSettings) -> None:
    conn = await connect(db_settings)
    try:
        before = await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
        assert [r["version"] for r in before] == [m.version for m in load_migrations()]

        assert await migrate(conn, schema=db_settings.search_path) == []
        assert await migrate(conn, schema=db_settings.search_path) == []

        after = await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
        assert after == before
    finally:
        await conn.close()


async def test_two_processes_migrating_at_once_apply_each_file_once(database_url: str) -> None:
    schema = f"test_concurrent_{uuid.uuid4().hex[:10]}"
    argv = [sys.executable, "-m", "ddas.db.migrate", "--schema", schema, "--database-url"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        procs = [
            await asyncio.create_subprocess_exec(
                *argv, database_url, env=env, stdout=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = await asyncio.gather(*(p.communicate() for p in procs))
        assert [p.returncode for p in procs] == [0, 0]
        printed = sorted(out.decode() for out, _ in outputs)
        # One process applied everything, the other waited for the lock and found nothing to do.
        expected = "".join(f"applied {m.filename}\n" for m in load_migrations())
        assert printed == sorted([expected, f"schema {schema} is up to date\n"])

        conn = await asyncpg.connect(database_url)
        try:
            count = await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations')
            assert count == len(load_migrations())
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(database_url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """A connection and an unused schema name, for migrations of the test's own making."""
    conn = await asyncpg.connect(database_url)
    schema = f"test_scratch_{uuid.uuid4().hex[:10]}"
    try:
        yield conn, schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_an_applied_migration_that_was_edited_is_refused(
    scratch: tuple[asyncpg.Connection, str], tmp_path: Path
) -> None:
    conn, schema = scratch
    first = tmp_path / "0001_first.sql"
    first.write_text("CREATE TABLE a (id int PRIMARY KEY);\n")
    assert [m.filename for m in await migrate(conn, schema=schema, directory=tmp_path)] == [
        "0001_first.sql"
    ]

    first.write_text("CREATE TABLE a (id bigint PRIMARY KEY);\n")
    with pytest.raises(MigrationError, match="0001_first.sql was edited"):
        await migrate(conn, schema=schema, directory=tmp_path)


async def test_a_failing_migration_is_rolled_back_whole(
    scratch: tuple[asyncpg.Connection, str], tmp_path: Path
) -> None:
    conn, schema = scratch
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (id int PRIMARY KEY);\n")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE b (id int);\nSELECT 1 / 0;\n")

    with pytest.raises(MigrationError, match="0002_broken.sql failed"):
        await migrate(conn, schema=schema, directory=tmp_path)

    versions = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
    assert [r["version"] for r in versions] == [1]
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
    )
    assert sorted(r["table_name"] for r in tables) == ["a", "schema_migrations"]
    # The caller's search_path is restored, and the lock released (a second run may proceed).
    assert await conn.fetchval("SELECT current_setting('search_path')") == '"$user", public'
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE b (id int);\n")
    assert [m.version for m in await migrate(conn, schema=schema, directory=tmp_path)] == [2]
