"""Validate's transactions on the real database (no broker): chunks stored with COPY, redelivery
as a no-op, completion exactly once (also when two connections store the last chunks at once,
and when the last chunk races ingest's recording of the delivery), chunks of a delivery not
recorded yet staged and never completed, and the stored tables and findings equal to
`ddas check`'s."""

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
from ddas.domain.oor import Oor, OorDeel
from ddas.domain.tables import Periode, Tabellen, Totalen, TrajectFeit
from ddas.pipeline import topics
from ddas.pipeline.events import decode_levering_event, encode
from ddas.settings import DatabaseSettings
from services.validate.chunks import CheckedChunk, check_chunk
from services.validate.store import (
    ChunkMismatch,
    Stored,
    complete_ready,
    drop_stale,
    open_deliveries,
    store_chunk,
)

from .conftest import APP_750, stored_facts, stored_result
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
    # The per-trajectory facts themselves give the same tables.
    tabellen = Tabellen()
    facts = await stored_facts(db, levering_id)
    assert [(lev, feit[0]) for lev, feit in facts] == [(0, j) for j in range(750)]
    for _, feit in facts:
        tabellen.add(TrajectFeit(*feit[1:6]))
    assert tabellen.result() == expected.totalen
    # Every chunk's OOR part, stored with it: merged with the stored tables, the OOR of the
    # raw file counted in one pass; the trajectories themselves are not stored.
    delen = await db.fetch("SELECT oor FROM validatie_chunks WHERE levering_id = $1", levering_id)
    assert len(delen) == 8
    doc = json.loads(APP_750.read_bytes())
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    merged = Oor(p, tabellen=False)
    for r in delen:
        merged.voeg_toe(OorDeel.decode(r["oor"]))
    whole = Oor(p)
    for t in doc["leveringen"][0]["schuldhulptrajecten"]:
        whole.add(t)
    assert merged.result(Totalen.from_dict(result["tabellen"])) == whole.result()

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
    # one OOR part per chunk, the one its first delivery counted
    delen = await db.fetch(
        "SELECT oor FROM validatie_chunks WHERE levering_id = $1 ORDER BY chunk", levering_id
    )
    assert [r["oor"] for r in delen] == [again.oor, check_chunk(encode(second)).oor]
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


async def _record(db: asyncpg.Connection, levering_id: uuid.UUID) -> None:
    """What ingest does once every chunk is acknowledged: the delivery row (`ontvangen`)."""
    await db.execute(
        "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
        "startdatum_levering, einddatum_levering, content_hash) "
        "VALUES ($1, 'shv', 'TEST', '0503', '2025-01-01', '2025-12-31', $2)",
        levering_id,
        uuid.uuid4().hex,
    )


async def test_chunks_of_a_delivery_not_recorded_yet_are_staged_and_completed_once_it_is(
    db: asyncpg.Connection,
) -> None:
    """Ingest publishes chunks before it records the delivery: they are stored, nothing is
    completed or announced, and the recording's event completes it with ddas check's figures."""
    levering_id = uuid.uuid4()
    chunks = chunks_of(APP_750, levering_id, 200)
    outcomes = [await store_chunk(db, check_chunk(encode(c))) for c in chunks]
    assert [o.stored for o in outcomes] == [Stored.STORED] * 4
    assert await complete_ready(db, levering_id) is None  # not recorded: not completed
    assert await db.fetchval("SELECT voltooid_op FROM validatie") is None
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    assert len(await stored_facts(db)) == 750  # staged

    await _record(db, levering_id)
    done = await complete_ready(db, levering_id)
    assert done is not None and done[0].state == "gevalideerd" and done[1]
    assert await complete_ready(db, levering_id) is None  # once
    expected = check_file(APP_750)
    result = await stored_result(db, levering_id)
    assert result["state"] == "gevalideerd"
    assert result["tabellen"] == json.loads(json.dumps(expected.totalen.as_dict()))
    assert result["findings"] == [
        (f.code, str(f.ernst), f.pointer, f.message) for f in expected.findings
    ]
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_the_last_chunk_and_the_recording_racing_complete_the_delivery_exactly_once(
    db_settings: DatabaseSettings, db: asyncpg.Connection
) -> None:
    """The last chunk's transaction and the `ontvangen` event's completion, at the same moment,
    in every order: one of them completes the delivery, never none and never both."""
    pool = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=3, max_size=3)
    try:
        for attempt in range(12):
            levering_id = uuid.uuid4()
            checked = [check_chunk(encode(c)) for c in chunks_of(APP_750, levering_id, 250)]
            for c in checked[:-1]:
                await store_chunk(db, c)

            async def last(chunk: CheckedChunk) -> bool:
                async with pool.acquire() as conn:
                    return (await store_chunk(conn, chunk)).stored is Stored.COMPLETED

            async def recorded_then_event(levering_id: uuid.UUID, wait: float) -> bool:
                await asyncio.sleep(wait)
                async with pool.acquire() as conn:
                    await _record(conn, levering_id)
                    return await complete_ready(conn, levering_id) is not None

            by_chunk, by_event = await asyncio.gather(
                last(checked[-1]),
                recorded_then_event(levering_id, random.Random(attempt).random() * 0.02),
            )
            assert by_chunk + by_event == 1, (attempt, by_chunk, by_event)
            result = await stored_result(db, levering_id)
            assert (result["state"], result["facts"]) == ("gevalideerd", 750)
        assert await db.fetchval("SELECT count(*) FROM outbox") == 12
    finally:
        await pool.close()


async def test_a_submission_never_recorded_is_never_completed_and_its_staging_goes(
    db: asyncpg.Connection,
) -> None:
    """Chunks of a submission that ingest refused half-way or that crashed: staged, never
    completed; a redelivered chunk keeps them fresh; once stale they are deleted, with their
    processed-event ids (a retry of the submission may store them again)."""
    levering_id, other = uuid.uuid4(), uuid.uuid4()
    first, second = chunks_of(APP_750, levering_id, 400)
    await store_chunk(db, check_chunk(encode(first)))
    await store_chunk(db, check_chunk(encode(second)))
    await store_chunk(db, check_chunk(encode(chunks_of(APP_750, other, 1000)[0])))
    await _record(db, other)  # completed by its last chunk? No: recorded after it.
    assert await open_deliveries(db, 60) == ([other], [])
    await db.execute("UPDATE validatie SET bijgewerkt_op = now() - interval '2 minutes'")
    assert await open_deliveries(db, 60) == ([other], [levering_id])
    # A chunk delivered again (a retried submission) makes it fresh: not dropped.
    assert (await store_chunk(db, check_chunk(encode(first)))).stored is Stored.DUPLICATE
    assert not await drop_stale(db, levering_id, 60)
    await db.execute(
        "UPDATE validatie SET bijgewerkt_op = now() - interval '2 minutes' WHERE levering_id = $1",
        levering_id,
    )
    assert await drop_stale(db, levering_id, 60)
    for table in ("validatie", "validatie_chunks", "bevindingen", "validatie_leveringen"):
        assert not await db.fetchval(
            f"SELECT count(*) FROM {table} WHERE levering_id = $1", levering_id
        ), table
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 1  # `other`'s chunk
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    # A recorded delivery is never dropped, however old.
    assert not await drop_stale(db, other, 60)
    # The submission retried: its chunks are stored anew and, once recorded, completed.
    await store_chunk(db, check_chunk(encode(first)))
    await _record(db, levering_id)
    outcome = await store_chunk(db, check_chunk(encode(second)))
    assert outcome.stored is Stored.COMPLETED
    assert (await stored_result(db, levering_id))["facts"] == 750


async def test_a_deleted_delivery_takes_validates_rows_along(
    db: asyncpg.Connection, new_levering: NewLevering
) -> None:
    """As the foreign keys' ON DELETE CASCADE did before chunks could come first (0009)."""
    levering_id, other = await new_levering(), await new_levering()
    for lid in (levering_id, other):
        for chunk in chunks_of(APP_750, lid, 400):
            await store_chunk(db, check_chunk(encode(chunk)))
    await db.execute("DELETE FROM leveringen WHERE id = $1", levering_id)
    for table in ("validatie", "validatie_chunks", "bevindingen", "validatie_leveringen"):
        counts = await db.fetch(f"SELECT levering_id, count(*) FROM {table} GROUP BY 1")
        assert {r[0] for r in counts} == {other}, table
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 2  # `other`'s
