"""Validate's transactions on the real database (no broker): chunks stored with COPY, redelivery
as a no-op, completion exactly once (also when two connections store the last chunks at once),
and the stored tables and findings equal to `ddas check`'s."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import pytest

from ddas.domain.check import check_file
from ddas.domain.tables import Tabellen, TrajectFeit
from ddas.pipeline import topics
from ddas.pipeline.events import decode_levering_event, encode
from ddas.settings import DatabaseSettings
from services.validate.chunks import check_chunk
from services.validate.store import ChunkMismatch, Stored, store_chunk

from .conftest import APP_750, stored_result
from .helpers import chunks_of

# The real broker and/or database: `make test-unit` leaves these out.
pytestmark = pytest.mark.integration
NewLevering = Callable[..., Awaitable[uuid.UUID]]


async def test_the_stored_tables_and_findings_of_the_750_file_are_those_of_ddas_check(
    db: asyncpg.Connection, new_levering: NewLevering
) -> None:
    levering_id = await new_levering()
    chunks = chunks_of(APP_750, levering_id, 100)
    random.Random(3).shuffle(chunks)
    outcomes = [await store_chunk(db, check_chunk(encode(c))) for c in chunks]
    assert [o.stored for o in outcomes] == [Stored.STORED] * 7 + [Stored.COMPLETED]
    assert outcomes[-1].transitioned

    expected = check_file(APP_750)
    result = await stored_result(db, levering_id)
    assert result["state"] == result["uitkomst"] == "gevalideerd"
    assert result["tabellen"] == json.loads(json.dumps(expected.totalen.as_dict()))
    assert result["tabellen"]["totaal"]["unieke_bsn"] == 875
    assert result["findings"] == [
        (f.code, str(f.ernst), f.pointer, f.message) for f in expected.findings
    ]
    assert result["samenvatting"]["fouten"] == expected.fouten
    assert result["samenvatting"]["waarschuwingen"] == expected.waarschuwingen
    assert result["facts"] == 750
    # The per-trajectory facts themselves (what the report reads) give the same tables.
    tabellen = Tabellen()
    for row in await db.fetch(
        "SELECT gemeentecode, bsns, actief, laatste_stap, laatste_datum FROM traject_feiten "
        "WHERE levering_id = $1 ORDER BY levering_index, traject_index",
        levering_id,
    ):
        tabellen.add(TrajectFeit(row[0], tuple(row[1]), row[2], row[3], row[4]))
    assert tabellen.result() == expected.totalen

    # The state change's event is in the outbox, keyed by the delivery, with an audit row.
    rows = await db.fetch("SELECT topic, message_key, payload FROM outbox")
    assert [(r["topic"], r["message_key"]) for r in rows] == [(topics.LEVERINGEN, str(levering_id))]
    event = decode_levering_event(rows[0]["payload"])
    assert (event.levering_id, event.state) == (str(levering_id), "gevalideerd")
    assert event.bevindingen.fouten == expected.fouten
    assert sum(event.bevindingen.per_code.values()) == len(expected.findings)
    audit = await db.fetch("SELECT * FROM audit_log WHERE levering_id = $1", levering_id)
    assert len(audit) == 1


async def test_a_chunk_stored_twice_is_stored_once(
    db: asyncpg.Connection, new_levering: NewLevering
) -> None:
    levering_id = await new_levering()
    first, second = chunks_of(APP_750, levering_id, 400)
    assert (await store_chunk(db, check_chunk(encode(first)))).stored is Stored.STORED
    # The same event again, and the same chunk under another event id (a re-publication).
    again = check_chunk(encode(first))
    assert (await store_chunk(db, again)).stored is Stored.DUPLICATE
    renamed = msgspec.structs.replace(first, event_id=str(uuid.uuid4()))
    assert (await store_chunk(db, check_chunk(encode(renamed)))).stored is Stored.DUPLICATE
    assert (await store_chunk(db, check_chunk(encode(second)))).stored is Stored.COMPLETED
    assert (await store_chunk(db, check_chunk(encode(second)))).stored is Stored.DUPLICATE

    result = await stored_result(db, levering_id)
    assert (result["klaar"], result["chunks"], result["facts"]) == (2, 2, 750)
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_two_connections_storing_the_last_chunks_at_once_complete_the_delivery_once(
    db_settings: DatabaseSettings, db: asyncpg.Connection, new_levering: NewLevering
) -> None:
    pool = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=4, max_size=4)
    try:
        for _ in range(3):
            levering_id = await new_levering()
            checked = [check_chunk(encode(c)) for c in chunks_of(APP_750, levering_id, 50)]

            async def store(part: list) -> list[Stored]:  # type: ignore[type-arg]
                async with pool.acquire() as conn:
                    return [(await store_chunk(conn, c)).stored for c in part]

            results = await asyncio.gather(*(store(checked[i::4]) for i in range(4)))
            stored = [s for part in results for s in part]
            assert stored.count(Stored.COMPLETED) == 1
            assert stored.count(Stored.STORED) == len(checked) - 1
            result = await stored_result(db, levering_id)
            assert result["state"] == "gevalideerd"
            assert result["tabellen"]["totaal"]["unieke_actieve_bsn"] == 539
        assert await db.fetchval("SELECT count(*) FROM outbox") == 3
    finally:
        await pool.close()


async def test_a_delivery_replaced_meanwhile_is_validated_but_keeps_its_state(
    db: asyncpg.Connection, new_levering: NewLevering
) -> None:
    levering_id, opvolger = await new_levering(), await new_levering()
    await db.execute(
        "UPDATE leveringen SET state = 'vervangen', vervangen_door = $2 WHERE id = $1",
        levering_id,
        opvolger,
    )
    (chunk,) = chunks_of(APP_750, levering_id, 1000)
    outcome = await store_chunk(db, check_chunk(encode(chunk)))
    assert outcome.stored is Stored.COMPLETED and not outcome.transitioned
    result = await stored_result(db, levering_id)
    assert (result["state"], result["uitkomst"]) == ("vervangen", "gevalideerd")
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_chunk_that_disagrees_about_the_chunk_count_is_refused_whole(
    db: asyncpg.Connection, new_levering: NewLevering
) -> None:
    levering_id = await new_levering()
    first, second = chunks_of(APP_750, levering_id, 400)
    await store_chunk(db, check_chunk(encode(first)))
    wrong = msgspec.structs.replace(second, chunks=3)
    with pytest.raises(ChunkMismatch):
        await store_chunk(db, check_chunk(encode(wrong)))
    assert (await stored_result(db, levering_id))["facts"] == 400  # nothing of it stayed


async def test_a_chunk_of_an_unknown_delivery_is_refused(db: asyncpg.Connection) -> None:
    (chunk,) = chunks_of(APP_750, uuid.uuid4(), 1000)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await store_chunk(db, check_chunk(encode(chunk)))
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 0
