"""Validate's PostgreSQL side: one transaction per chunk, and the completion of a delivery inside
the transaction that stores its last chunk (tables in migration 0003_validate.sql).

Per chunk, in one transaction:
1. the processed-event row (consumer `validate`, the chunk's event id) and the chunk's row in
   `validatie_chunks`: when either exists already, the chunk was stored before and this
   delivery of it is a no-op;
2. the levering header (by the chunk that starts the levering), the facts and the findings,
   with COPY (`copy_records_to_table`): no round trip per trajectory;
3. the delivery's counter, `validatie.klaar`, upserted last: the row lock it takes is held to
   the commit, so of two chunk transactions finishing at once the later one sees the earlier
   one's count and facts, and exactly one of them sees `klaar == chunks`;
4. that one completes the delivery: reads the facts in file order, runs the rules on the
   headers and across trajectories and the tables (`completion.complete`), stores them and the
   summary, and moves the delivery from `ontvangen` to `gevalideerd` or `afgekeurd` with its
   `LeveringEvent` in the outbox and an audit row (`ddas.lifecycle.transition`).

A crash anywhere before the commit leaves nothing behind: the chunk is delivered again and
stored again from scratch.
"""

from __future__ import annotations

import datetime as dt
import enum
import gc
import logging
import uuid
from dataclasses import dataclass
from typing import Final

import asyncpg
import msgspec

from ddas import lifecycle
from ddas.pipeline.events import Bevindingen, LeveringEvent

from .chunks import (
    BEVINDING_KOLOMMEN,
    FEIT_KOLOMMEN,
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
            return ChunkOutcome(Stored.DUPLICATE)
        first = await conn.fetchval(
            "INSERT INTO validatie_chunks (levering_id, chunk, event_id, levering_index, eerste, "
            "trajecten, feiten) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT DO NOTHING RETURNING true",
            chunk.levering_id,
            chunk.chunk,
            chunk.event_id,
            chunk.levering_index,
            chunk.eerste,
            chunk.trajecten,
            chunk.kort,
        )
        if not first:
            return ChunkOutcome(Stored.DUPLICATE)
        if chunk.levering_json is not None:
            await conn.execute(
                "INSERT INTO validatie_leveringen (levering_id, levering_index, kop) "
                "VALUES ($1, $2, $3)",
                chunk.levering_id,
                chunk.levering_index,
                chunk.levering_json,
            )
        if chunk.feiten:
            await conn.copy_records_to_table(
                "traject_feiten", records=chunk.feiten, columns=FEIT_KOLOMMEN
            )
        if chunk.bevindingen:
            await conn.copy_records_to_table(
                "bevindingen", records=chunk.bevindingen, columns=BEVINDING_KOLOMMEN
            )
        row = await conn.fetchrow(
            "INSERT INTO validatie AS v (levering_id, chunks, klaar, root) "
            "VALUES ($1, $2, 1, $3) "
            "ON CONFLICT (levering_id) DO UPDATE SET klaar = v.klaar + 1 "
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
        uitkomst, transitioned = await _complete(conn, chunk)
        return ChunkOutcome(Stored.COMPLETED, uitkomst, transitioned)


async def _complete(conn: asyncpg.Connection, chunk: CheckedChunk) -> tuple[Uitkomst, bool]:
    levering_id = chunk.levering_id
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
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        delen = [(r["levering_index"], decode_kort(r["feiten"])) for r in stored]
        uitkomst = complete(levering_id, chunk.root, koppen, delen)
        del delen, stored
    finally:
        if gc_was_enabled:
            gc.enable()
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
