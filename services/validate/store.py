"""Validate's PostgreSQL side: one transaction per chunk, and the completion of a delivery once
every chunk is stored and ingest has recorded the delivery (tables in migrations 0003_validate.sql,
0009_overlap.sql, 0010_oor_delen.sql and 0011_traject_feiten_weg.sql).

Ingest publishes a delivery's chunks while it is still making them and records the delivery
(its `leveringen` row) only when every chunk is acknowledged (docs/pipeline.md). So chunks may
be stored here before that row exists: they are staged under the delivery's id, and only a
recorded delivery is ever completed.

Per chunk, in one transaction:
1. the processed-event row (consumer `validate`, the chunk's event id) and the chunk's row in
   `validatie_chunks`, with the facts of its trajectories (one MessagePack value) and its OOR
   part for the report (migration 0010): when either exists already, the chunk was stored
   before and this delivery of it is a no-op (apart from `validatie.bijgewerkt_op`: a retried
   submission keeps its staged chunks alive);
2. the levering header (by the chunk that starts the levering) and the findings, with COPY
   (`copy_records_to_table`): no round trip per finding;
3. the delivery's counter, `validatie.klaar`, upserted last: the row lock it takes is held to
   the commit, so of two chunk transactions finishing at once the later one sees the earlier
   one's count and facts, and exactly one of them sees `klaar == chunks`;
4. that one completes the delivery if ingest has recorded it (`complete_if_recorded`): reads
   the facts in file order, runs the rules on the headers and across trajectories and the
   tables (`completion.complete`), stores them and the summary, and moves the delivery from
   `ontvangen` to `gevalideerd` or `afgekeurd` with its `LeveringEvent` in the outbox and an
   audit row (`ddas.lifecycle.transition`).

When ingest records the delivery after its last chunk was stored, its `ontvangen` event (or,
failing that, the sweep) calls `complete_ready`. The last chunk's transaction and
`complete_ready` take the same transaction-level advisory lock on the delivery before they look:
whichever comes second sees what the first committed, so a delivery is completed exactly once
and never left waiting.

A crash anywhere before the commit leaves nothing behind: the chunk is delivered again and
stored again from scratch. What a submission that never became a delivery left staged is
deleted by `drop_stale` once it is old enough.
"""

from __future__ import annotations

import datetime as dt
import enum
import gc
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import msgspec

from ddas import lifecycle
from ddas.pipeline.events import Bevindingen, LeveringEvent

from .chunks import (
    BEVINDING_KOLOMMEN,
    CheckedChunk,
    decode_kort,
    decode_value,
)
from .completion import Uitkomst, complete, samenvatting

log = logging.getLogger(__name__)

CONSUMER: Final = "validate"
ACTOR: Final = "service:validate"

_json = msgspec.json.Encoder()


class ChunkMismatch(ValueError):
    """A chunk disagrees with the ones stored before it about the number of chunks."""


class Stored(enum.Enum):
    DUPLICATE = "duplicate"  # stored before: nothing done
    STORED = "stored"  # stored; the delivery is not complete yet
    COMPLETED = "completed"  # stored, and the delivery was completed by this transaction


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    stored: Stored
    uitkomst: Uitkomst | None = None
    transitioned: bool = False  # False when the delivery had left `ontvangen` meanwhile


async def store_chunk(conn: asyncpg.Connection, chunk: CheckedChunk) -> ChunkOutcome:
    """Store one checked chunk (and complete its delivery when it is the last), in one
    transaction of its own on `conn`."""
    async with conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true",
            CONSUMER,
            chunk.event_id,
        )
        if not first:
            await _touch(conn, chunk.levering_id)
            return ChunkOutcome(Stored.DUPLICATE)
        first = await conn.fetchval(
            "INSERT INTO validatie_chunks (levering_id, chunk, event_id, levering_index, eerste, "
            "trajecten, feiten, oor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT DO NOTHING RETURNING true",
            chunk.levering_id,
            chunk.chunk,
            chunk.event_id,
            chunk.levering_index,
            chunk.eerste,
            chunk.trajecten,
            chunk.kort,
            chunk.oor,
        )
        if not first:
            await _touch(conn, chunk.levering_id)
            return ChunkOutcome(Stored.DUPLICATE)
        if chunk.levering_json is not None:
            await conn.execute(
                "INSERT INTO validatie_leveringen (levering_id, levering_index, kop) "
                "VALUES ($1, $2, $3)",
                chunk.levering_id,
                chunk.levering_index,
                chunk.levering_json,
            )
        if chunk.bevindingen:
            await conn.copy_records_to_table(
                "bevindingen", records=chunk.bevindingen, columns=BEVINDING_KOLOMMEN
            )
        row = await conn.fetchrow(
            "INSERT INTO validatie AS v (levering_id, chunks, klaar, root) "
            "VALUES ($1, $2, 1, $3) "
            "ON CONFLICT (levering_id) DO UPDATE SET klaar = v.klaar + 1, bijgewerkt_op = now() "
            "RETURNING klaar, chunks",
            chunk.levering_id,
            chunk.chunks,
            chunk.root_json,
        )
        if row["chunks"] != chunk.chunks:
            raise ChunkMismatch(
                f"chunk {chunk.chunk} says the delivery has {chunk.chunks} chunks, "
                f"earlier chunks said {row['chunks']}"
            )
        if row["klaar"] < row["chunks"]:
            return ChunkOutcome(Stored.STORED)
        done = await complete_if_recorded(conn, chunk.levering_id, chunk.root)
        if done is None:  # ingest has not recorded it yet: its `ontvangen` event will tell
            return ChunkOutcome(Stored.STORED)
        uitkomst, transitioned = done
        return ChunkOutcome(Stored.COMPLETED, uitkomst, transitioned)


async def _touch(conn: asyncpg.Connection, levering_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE validatie SET bijgewerkt_op = now() WHERE levering_id = $1 AND voltooid_op IS NULL",
        levering_id,
    )


def _lock_key(levering_id: uuid.UUID) -> int:
    """The delivery's advisory lock (the one-key space: apart from the migration runner's)."""
    return int.from_bytes(levering_id.bytes[:8], "big", signed=True)


async def _recorded(conn: asyncpg.Connection, levering_id: uuid.UUID) -> bool:
    """Under the delivery's advisory lock: whether ingest has recorded it (committed)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(levering_id))
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM leveringen WHERE id = $1)", levering_id)
    )


async def complete_if_recorded(
    conn: asyncpg.Connection, levering_id: uuid.UUID, root: dict[str, Any]
) -> tuple[Uitkomst, bool] | None:
    """In the transaction that stored a delivery's last chunk: complete it if ingest has
    recorded it (None: not yet)."""
    if not await _recorded(conn, levering_id):
        return None
    return await _complete(conn, levering_id, root)


async def complete_ready(
    conn: asyncpg.Connection, levering_id: uuid.UUID
) -> tuple[Uitkomst, bool] | None:
    """Complete a recorded delivery whose chunks are all stored and that is not completed yet,
    in a transaction of its own (None: nothing to do). For ingest's `ontvangen` event and the
    sweep; safe to call any number of times, also concurrently with the chunks."""
    async with conn.transaction():
        if not await _recorded(conn, levering_id):
            return None
        # No row lock here: a chunk transaction holds this row's lock while it waits for the
        # advisory lock, and it completes the delivery itself when it gets it.
        row = await conn.fetchrow(
            "SELECT klaar, chunks, voltooid_op, root::text AS root FROM validatie "
            "WHERE levering_id = $1",
            levering_id,
        )
        if row is None or row["voltooid_op"] is not None or row["klaar"] < row["chunks"]:
            return None
        return await _complete(conn, levering_id, decode_value(row["root"]))


async def open_deliveries(
    conn: asyncpg.Connection, stale_after: float
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(recorded deliveries with every chunk stored but not completed, staged deliveries that
    were never recorded and saw no chunk for `stale_after` seconds)."""
    rows = await conn.fetch(
        "SELECT v.levering_id, l.id IS NOT NULL AS recorded FROM validatie v "
        "LEFT JOIN leveringen l ON l.id = v.levering_id "
        "WHERE v.voltooid_op IS NULL AND ("
        "  (l.id IS NOT NULL AND v.klaar = v.chunks) OR "
        "  (l.id IS NULL AND v.bijgewerkt_op < now() - make_interval(secs => $1)))",
        stale_after,
    )
    ready = [r["levering_id"] for r in rows if r["recorded"]]
    stale = [r["levering_id"] for r in rows if not r["recorded"]]
    return ready, stale


async def drop_stale(conn: asyncpg.Connection, levering_id: uuid.UUID, stale_after: float) -> bool:
    """Delete what a submission that never became a delivery left staged (its facts, findings,
    chunks and their processed-event ids), if it is still unrecorded and still stale. True:
    deleted."""
    async with conn.transaction():
        # The row lock (not the advisory lock, which a chunk transaction takes while it holds
        # this row's lock): a chunk stored meanwhile makes the row fresh again, and so not stale.
        stale = await conn.fetchval(
            "SELECT true FROM validatie v WHERE v.levering_id = $1 AND v.voltooid_op IS NULL "
            "AND v.bijgewerkt_op < now() - make_interval(secs => $2) "
            "AND NOT EXISTS (SELECT 1 FROM leveringen l WHERE l.id = v.levering_id) "
            "FOR UPDATE OF v",
            levering_id,
            stale_after,
        )
        if not stale:
            return False
        await conn.execute(
            "DELETE FROM processed_events WHERE consumer = $1 AND event_id IN "
            "(SELECT event_id FROM validatie_chunks WHERE levering_id = $2)",
            CONSUMER,
            levering_id,
        )
        for table in ("bevindingen", "validatie_leveringen", "validatie_chunks", "validatie"):
            await conn.execute(f"DELETE FROM {table} WHERE levering_id = $1", levering_id)
    return True


async def _complete(
    conn: asyncpg.Connection, levering_id: uuid.UUID, root: dict[str, Any]
) -> tuple[Uitkomst, bool]:
    started = time.perf_counter()
    koppen = [
        (r["levering_index"], decode_value(r["kop"]))
        for r in await conn.fetch(
            "SELECT levering_index, kop FROM validatie_leveringen WHERE levering_id = $1 "
            "ORDER BY levering_index",
            levering_id,
        )
    ]
    stored = await conn.fetch(
        "SELECT levering_index, feiten FROM validatie_chunks WHERE levering_id = $1 "
        "ORDER BY levering_index, eerste",
        levering_id,
    )
    # Some 10 objects per trajectory and no cycles among them: the cyclic garbage collector
    # would walk the growing heap again and again (a third of the time) for nothing.
    read = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        delen = [(r["levering_index"], decode_kort(r["feiten"])) for r in stored]
        decoded = time.perf_counter()
        uitkomst = complete(levering_id, root, koppen, delen)
        del delen, stored
    finally:
        if gc_was_enabled:
            gc.enable()
    computed = time.perf_counter()
    if uitkomst.bevindingen:
        await conn.copy_records_to_table(
            "bevindingen", records=uitkomst.bevindingen, columns=BEVINDING_KOLOMMEN
        )
    summary = samenvatting(
        await conn.fetch(
            "SELECT code, ernst, count(*) FROM bevindingen WHERE levering_id = $1 "
            "GROUP BY code, ernst",
            levering_id,
        )
    )
    p = uitkomst.periode
    await conn.execute(
        "UPDATE validatie SET voltooid_op = now(), uitkomst = $2, afkeuring = $3, "
        "periode_start = $4, periode_eind = $5, tabellen = $6, samenvatting = $7 "
        "WHERE levering_id = $1",
        levering_id,
        uitkomst.state,
        uitkomst.afkeuring,
        p.start if p else None,
        p.eind if p else None,
        _json.encode(uitkomst.totalen.as_dict()).decode(),
        _json.encode(summary).decode(),
    )
    event = levering_event(levering_id, uitkomst.state, summary)
    log.info(
        "completion of %s (%d trajectories): read %.2f s, decoded %.2f s, rules and tables "
        "%.2f s, stored %.2f s",
        levering_id,
        uitkomst.trajecten,
        read - started,
        decoded - read,
        computed - decoded,
        time.perf_counter() - computed,
    )
    try:
        await lifecycle.transition(
            conn,
            levering_id,
            "ontvangen",
            uitkomst.state,
            event=event,
            actor=ACTOR,
            details={"afkeuring": uitkomst.afkeuring, "trajecten": uitkomst.trajecten},
        )
    except lifecycle.StateConflict as exc:
        # Replaced (or otherwise moved on) while it was being validated: the validation is
        # kept, the delivery's state is not ours to change any more.
        log.warning("delivery %s: %s; validated, state left as it is", levering_id, exc)
        return uitkomst, False
    return uitkomst, True


def levering_event(levering_id: uuid.UUID, state: str, summary: Bevindingen) -> LeveringEvent:
    return LeveringEvent(
        event_id=str(uuid.uuid4()),
        levering_id=str(levering_id),
        state=state,
        occurred_at=dt.datetime.now(dt.UTC).isoformat(),
        bevindingen=summary,
    )
